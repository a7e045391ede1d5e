package queue

import (
	"os"
	"syscall"
)

// fdatasync flushes a file's data and the metadata needed to read it back
// (its size), skipping timestamps: what bbolt does on Linux too.
func fdatasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}
