package queue

import (
	"fmt"
	"testing"
)

// Where O_DIRECT is refused, the journal writes through the page cache and
// syncs.
func TestJournalWithoutDirectIO(t *testing.T) {
	directIO = false
	defer func() { directIO = true }()
	dir := t.TempDir()
	b := open(t, dir, nil)
	if b.journal.seg.direct {
		t.Fatal("the journal opened its file with O_DIRECT")
	}
	enqueue(t, b, submission(1, "a"))
	b.Close()
	b = open(t, dir, nil)
	defer b.Close()
	if pa, _ := b.Pending(ctx, "a", 10); fmt.Sprint(titles(pa)) != "[alert 1]" {
		t.Fatalf("pending %v", titles(pa))
	}
}

func TestJournalUsesDirectIO(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	defer b.Close()
	if !b.journal.seg.direct {
		t.Error("the journal on this disk is not written with O_DIRECT|O_DSYNC")
	}
}
