package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/config"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/formatter"
	"github.com/sentry-dingtalk-relay/sentry-dingtalk-relay/relay/admin"
)

// deadLetterAdmin is what the deadletters commands need, from the running
// relay's admin socket or from the data directory directly.
type deadLetterAdmin interface {
	List(ctx context.Context) ([]admin.DeadLetter, error)
	Replay(ctx context.Context, req admin.ReplayRequest) (admin.ReplayResult, error)
}

// deadLetters lists or replays dead letters. While the relay runs it goes
// through the relay's admin socket in RELAY_DATA_DIR; otherwise it opens the
// queue itself.
func deadLetters(ctx context.Context, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: deadletters list [--json] | deadletters replay [ID...|--all] [--robot NAME]")
	}
	sub, args := args[0], args[1:]
	cfg, err := config.Load(environ)
	if err != nil {
		return err
	}
	adm, done, err := openAdmin(cfg)
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "list":
		fs := flag.NewFlagSet("deadletters list", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "print JSON")
		if err := fs.Parse(args); err != nil {
			return errSilent
		}
		list, err := adm.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tBURIED\tROBOT\tPROJECT\tTITLE\tREASON")
		for _, d := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Buried.Local().Format(time.DateTime), d.Robot,
				d.Project, formatter.Shorten(d.Title, 60), formatter.Shorten(d.Reason, 80))
		}
		return tw.Flush()
	case "replay":
		fs := flag.NewFlagSet("deadletters replay", flag.ContinueOnError)
		all := fs.Bool("all", false, "replay every dead letter")
		robot := fs.String("robot", "", "send them to this robot instead of the one each was for")
		if err := fs.Parse(args); err != nil {
			return errSilent
		}
		res, err := adm.Replay(ctx, admin.ReplayRequest{IDs: fs.Args(), All: *all, Robot: *robot})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead letters queued again for %v\n", res.Replayed, res.Robots)
		return nil
	}
	return fmt.Errorf("unknown deadletters command %q: use list or replay", sub)
}

// openAdmin reaches the running relay's admin socket, or else opens the
// store that is in RELAY_DATA_DIR (never a new one).
func openAdmin(cfg *config.Config) (deadLetterAdmin, func(), error) {
	if c, err := admin.Dial(cfg.DataDir); err == nil {
		return c, func() {}, nil
	}
	rt, err := newSetup(cfg, slog.New(slog.DiscardHandler), setupOptions{})
	if err != nil {
		return nil, nil, err
	}
	storage, err := openStore(cfg, slog.New(slog.DiscardHandler), nil, existingStore)
	if err != nil {
		return nil, nil, err
	}
	return &admin.Service{Store: storage.Store, Names: rt.names()}, func() { storage.Store.Close() }, nil
}
