//go:build !linux

package queue

import (
	"errors"
	"os"
)

func fdatasync(f *os.File) error {
	return f.Sync()
}

func openSynced(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	return f, false, err
}

func preallocate(*os.File, int64) error { return nil }

func freeBytes(string) (int64, error) { return 0, errors.ErrUnsupported }
