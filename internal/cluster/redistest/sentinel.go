package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterName is the name the Sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// Sentinel timings: low, so a failover takes a second or two.
const (
	downAfter       = 500 * time.Millisecond // master unanswered this long: down
	failoverTimeout = 3 * time.Second
)

// SentinelOptions shape StartSentinel's setup.
type SentinelOptions struct {
	// Replicas of the master. Zero: none (no failover is possible).
	Replicas int
	// Sentinels watching the master. Zero: one. Their quorum is one.
	Sentinels int
	// Password, when set, is required by the master and the replicas
	// (requirepass, masterauth) and given to the Sentinels (auth-pass);
	// the Sentinels themselves ask for none.
	Password string
}

// Sentinel is a master, its replicas and the Sentinels that watch it, all
// on free loopback ports and killed when the test ends.
type Sentinel struct {
	Master    *Server
	Replicas  []*Server
	Sentinels []*Server
}

// StartSentinel runs a master, o.Replicas replicas of it and o.Sentinels
// Sentinels monitoring it as MasterName, and waits until every replica is
// in sync and every Sentinel knows the master as ok with all replicas and
// all other Sentinels (so that a failover can happen at once).
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if o.Sentinels <= 0 {
		o.Sentinels = 1
	}
	// A replica syncs at once (the default waits 5s for more replicas);
	// every data server gets masterauth, since a failover may make the
	// master a replica.
	args := []string{"--repl-diskless-sync-delay", "0"}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	st := &Sentinel{Master: startData(t, o.Password, args...)}
	masterPort := st.Master.port
	for range o.Replicas {
		r := startData(t, o.Password, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(masterPort)}, args...)...)
		st.Replicas = append(st.Replicas, r)
	}
	for range o.Sentinels {
		s := &Server{}
		st.Sentinels = append(st.Sentinels, s.launch(t, func(port int) []string {
			conf := []string{
				"port " + strconv.Itoa(port),
				"bind 127.0.0.1",
				"protected-mode no",
				"daemonize no",
				`logfile ""`,
				"dir " + strconv.Quote(s.dir),
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1", MasterName, masterPort),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", MasterName, downAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", MasterName, failoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", MasterName),
			}
			if o.Password != "" {
				conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", MasterName, strconv.Quote(o.Password)))
			}
			// Sentinel rewrites its file: one per start.
			path := filepath.Join(s.dir, "sentinel.conf")
			if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{path, "--sentinel"}
		}))
	}

	deadline := time.Now().Add(startTimeout)
	for _, r := range st.Replicas {
		for {
			info, err := r.Do("INFO", "replication")
			if err == nil && strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s not in sync within %v: %s %v", r.Addr, startTimeout, info, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want := fmt.Sprintf("name=%s,status=ok,address=%s,slaves=%d,sentinels=%d", MasterName, st.Master.Addr, o.Replicas, o.Sentinels)
	for _, s := range st.Sentinels {
		for {
			info, err := s.Do("INFO", "sentinel")
			if err == nil && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Sentinel %s does not report %q within %v: %s %v", s.Addr, want, startTimeout, info, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return st
}

// startData runs a data server as Start does; password is what Do
// authenticates with.
func startData(t testing.TB, password string, extra ...string) *Server {
	t.Helper()
	s := &Server{Password: password}
	return s.launch(t, func(port int) []string { return append(s.baseArgs(port), extra...) })
}

// Addrs are the Sentinels' addresses, for redis.addrs.
func (st *Sentinel) Addrs() []string {
	addrs := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		addrs[i] = s.Addr
	}
	return addrs
}

// MasterAddr asks the Sentinels, in turn, for the master's address.
func (st *Sentinel) MasterAddr() (string, error) {
	var err error
	for _, s := range st.Sentinels {
		var hp []string
		hp, err = s.Strings("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName)
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		if err == nil {
			err = fmt.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME = %q", hp)
		}
	}
	return "", err
}
