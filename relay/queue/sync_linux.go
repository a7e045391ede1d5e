package queue

import (
	"errors"
	"os"
	"syscall"
)

// fdatasync flushes a file's data and the metadata needed to read it back
// (its size), skipping timestamps: what bbolt does on Linux too.
func fdatasync(f *os.File) error {
	return syscall.Fdatasync(int(f.Fd()))
}

// openSynced opens a journal file for writes that are durable when they
// return (O_DIRECT|O_DSYNC); where the file system refuses O_DIRECT
// (tmpfs), for plain writes to be followed by fdatasync.
func openSynced(path string) (f *os.File, direct bool, err error) {
	if directIO {
		f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT|syscall.O_DSYNC, 0)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return nil, false, err
		}
	}
	f, err = os.OpenFile(path, os.O_WRONLY, 0)
	return f, false, err
}

// directIO is false only in tests of the fallback, which the file systems
// at hand never force.
var directIO = true

// preallocate allocates a file's blocks, where the file system can.
func preallocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		return nil
	}
	return err
}

// freeBytes is the space on dir's file system an unprivileged process may
// use.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
