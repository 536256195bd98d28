//go:build linux || darwin

package monitor

import "golang.org/x/sys/unix"

// diskUsage is the size of the file system holding path and the space an
// unprivileged user may still use on it.
func diskUsage(path string) (total, free uint64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize) // int64 on linux, uint32 on darwin
	return uint64(st.Blocks) * bs, uint64(st.Bavail) * bs, true
}
