package main

// The highly available logs of the HA tests (ha_test.go): a NATS cluster
// with JetStream on each server, Redis with replicas and Sentinels, and a
// Redis Cluster. Every server is a child process of the test on loopback
// ports with its data in a temp dir (storetest.StartProcess), so a test can
// SIGKILL, stall (SIGSTOP) and restart any of them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/sluicehq/sluice/store/storetest"
)

// haHang bounds every wait of the HA tests: a guard against a hang, never
// a measure of speed.
const haHang = 60 * time.Second

// haGuard skips the HA tests unless SLUICE_TEST_HA=1 (make test-ha): they
// start a dozen servers and take tens of seconds each.
func haGuard(t testing.TB) {
	t.Helper()
	if os.Getenv("SLUICE_TEST_HA") != "1" {
		t.Skip("the HA tests run with SLUICE_TEST_HA=1 (make test-ha)")
	}
}

// freePorts returns n distinct free loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// pollUntil calls f until it reports true, or fails t after haHang.
// It polls the state of child processes, which tell no one when they
// change.
func pollUntil(t testing.TB, what string, f func(ctx context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(haHang)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok, err := f(ctx)
		cancel()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last error: %v)", what, haHang, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// natsNode is one server of a NATS cluster.
type natsNode struct {
	name    string
	proc    *storetest.Process
	monitor int // the HTTP monitoring port (/jsz)
}

// startNATSCluster starts n nats-servers (JetStream on each, file storage
// in temp dirs) routed into one cluster, and returns them and their
// client URLs, comma-separated as a DSN lists them.
func startNATSCluster(t testing.TB, n int) ([]*natsNode, string) {
	t.Helper()
	bin := os.Getenv("SLUICE_TEST_NATS_SERVER") // scripts/services.sh's
	if bin == "" {
		bin = "nats-server"
	}
	cports := freePorts(t, n)
	mports := freePorts(t, n)
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var nodes []*natsNode
	var urls []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		proc := storetest.StartProcess(t, bin, haHang, func(port int, dir string) []string {
			return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-n", name, "-m", strconv.Itoa(mports[i]),
				"-js", "-sd", dir + "/js", "-l", dir + "/nats.log",
				"--cluster_name", "sluiceha", "-cluster", routes[i], "-routes", strings.Join(routes, ",")}
		})
		nodes = append(nodes, &natsNode{name: name, proc: proc, monitor: mports[i]})
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", proc.Port))
	}
	// JetStream's meta group needs a leader before streams can be made.
	all := strings.Join(urls, ",")
	nc, err := nats.Connect(all)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "the JetStream cluster electing its meta leader", func(ctx context.Context) (bool, error) {
		info, err := js.AccountInfo(ctx)
		return err == nil && info != nil, err
	})
	return nodes, all
}

// streamLeader returns the name of the stream's leader and of its
// replicas that are current, through a connection to urls.
func streamLeader(ctx context.Context, urls, stream string) (leader string, current []string, err error) {
	nc, err := nats.Connect(urls, nats.Timeout(2*time.Second))
	if err != nil {
		return "", nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	if info.Cluster == nil {
		return "", nil, fmt.Errorf("stream %s has no cluster info", stream)
	}
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	return info.Cluster.Leader, current, nil
}

// metaState returns, as a server's monitoring endpoint says, the
// JetStream meta leader and the names of the meta group's members that
// are current (the leader included).
func (n *natsNode) metaState(ctx context.Context) (leader string, current []string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jsz", n.monitor), nil)
	if err != nil {
		return "", nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer res.Body.Close()
	var jsz struct {
		Meta struct {
			Leader   string `json:"leader"`
			Replicas []struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Offline bool   `json:"offline"`
			} `json:"replicas"`
		} `json:"meta_cluster"`
	}
	if err := json.NewDecoder(res.Body).Decode(&jsz); err != nil {
		return "", nil, err
	}
	if jsz.Meta.Leader == "" {
		return "", nil, errors.New("no meta leader")
	}
	current = []string{jsz.Meta.Leader}
	for _, r := range jsz.Meta.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	return jsz.Meta.Leader, current, nil
}

// metaCurrent reports, asking the meta leader, which members of the meta
// group are current.
func metaCurrent(ctx context.Context, nodes []*natsNode) (leader string, current []string, err error) {
	err = errors.New("no server answered")
	for _, n := range nodes {
		var l string
		if l, _, err = n.metaState(ctx); err != nil {
			continue
		}
		for _, m := range nodes {
			if m.name == l {
				return m.metaState(ctx)
			}
		}
	}
	return "", nil, err
}

// moveStreamLeader asks the stream's leader to step down in favour of the
// server named to (nats-server 2.11+ honours the preference).
func moveStreamLeader(ctx context.Context, urls, stream, to string) error {
	nc, err := nats.Connect(urls, nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	reply, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(`{"placement":{"preferred":"`+to+`"}}`))
	if err != nil {
		return err
	}
	var res struct {
		Error *struct{ Description string }
	}
	if err := json.Unmarshal(reply.Data, &res); err != nil {
		return err
	}
	if res.Error != nil {
		return errors.New(res.Error.Description)
	}
	return nil
}

// redisNode starts a redis-server of the test's own with no persistence
// (a replica gets its data from its primary) and args appended.
func redisNode(t testing.TB, args ...string) *storetest.Process {
	t.Helper()
	return storetest.StartProcess(t, "redis-server", haHang, func(port int, dir string) []string {
		return append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--dir", dir, "--save", "", "--appendonly", "no",
			"--daemonize", "no", "--logfile", dir + "/redis.log"}, args...)
	})
}

func redisAt(t testing.TB, port int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sentinelAt(t *testing.T, port int) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// infoField returns field of an INFO or SENTINEL reply's "k:v" lines.
func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			return v
		}
	}
	return ""
}

// sentinelSet is a primary, its replicas and the Sentinels that watch them
// under the name "ha".
type sentinelSet struct {
	primary   *storetest.Process
	replicas  []*storetest.Process
	sentinels []*storetest.Process
	dsn       string // redis+sentinel://… (no store settings)
}

// startSentinelSet starts a primary, nReplicas replicas and nSentinels
// Sentinels (quorum 2, a primary is down after 1 s without answers), and
// waits until every replica is in sync and every Sentinel knows the
// replicas and the other Sentinels.
func startSentinelSet(t *testing.T, nReplicas, nSentinels int) *sentinelSet {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		storetest.Unavailable(t, "redis-server is not installed")
	}
	ss := &sentinelSet{primary: redisNode(t)}
	for range nReplicas {
		ss.replicas = append(ss.replicas, redisNode(t, "--replicaof", "127.0.0.1", strconv.Itoa(ss.primary.Port)))
	}
	var addrs []string
	for range nSentinels {
		s := storetest.StartProcess(t, "redis-server", haHang, func(port int, dir string) []string {
			conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s/sentinel.log\n"+
				"sentinel monitor ha 127.0.0.1 %d 2\nsentinel down-after-milliseconds ha 1000\n"+
				"sentinel failover-timeout ha 10000\nsentinel parallel-syncs ha 2\n", port, dir, dir, ss.primary.Port)
			if err := os.WriteFile(dir+"/sentinel.conf", []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{dir + "/sentinel.conf", "--sentinel"}
		})
		ss.sentinels = append(ss.sentinels, s)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", s.Port))
	}
	ss.dsn = "redis+sentinel://" + strings.Join(addrs, ",") + "/0?master_name=ha"
	for _, r := range ss.replicas {
		c := redisAt(t, r.Port)
		pollUntil(t, "a replica syncing", func(ctx context.Context) (bool, error) {
			info, err := c.Info(ctx, "replication").Result()
			return infoField(info, "master_link_status") == "up", err
		})
	}
	for _, s := range ss.sentinels {
		c := sentinelAt(t, s.Port)
		pollUntil(t, "a Sentinel discovering the replicas and the other Sentinels", func(ctx context.Context) (bool, error) {
			kv, err := c.Master(ctx, "ha").Result()
			return err == nil && kv["num-slaves"] == strconv.Itoa(nReplicas) && kv["num-other-sentinels"] == strconv.Itoa(nSentinels-1), err
		})
	}
	return ss
}

// primaryPort asks a Sentinel which port the primary is on.
func (ss *sentinelSet) primaryPort(ctx context.Context, t *testing.T) (int, error) {
	for _, s := range ss.sentinels {
		addr, err := sentinelAt(t, s.Port).GetMasterAddrByName(ctx, "ha").Result()
		if err == nil && len(addr) == 2 {
			return strconv.Atoi(addr[1])
		}
	}
	return 0, fmt.Errorf("no Sentinel answered")
}

// startRedisCluster starts a Redis Cluster of nPrimaries primaries with a
// replica each (a node is failed after 1 s without answers) and returns
// its nodes and a redis+cluster:// DSN of them (no store settings).
func startRedisCluster(t *testing.T, nPrimaries int) ([]*storetest.Process, string) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		storetest.Unavailable(t, "redis-cli is not installed")
	}
	var nodes []*storetest.Process
	var addrs []string
	for range 2 * nPrimaries {
		n := redisNode(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000")
		nodes = append(nodes, n)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		c := redisAt(t, n.Port)
		pollUntil(t, "the cluster forming", func(ctx context.Context) (bool, error) {
			info, err := c.ClusterInfo(ctx).Result()
			return infoField(info, "cluster_state") == "ok" && infoField(info, "cluster_known_nodes") == strconv.Itoa(len(nodes)), err
		})
		// A replica that never synced cannot take over.
		pollUntil(t, "the replicas syncing", func(ctx context.Context) (bool, error) {
			info, err := c.Info(ctx, "replication").Result()
			return err == nil && (infoField(info, "role") == "master" || infoField(info, "master_link_status") == "up"), err
		})
	}
	return nodes, "redis+cluster://" + strings.Join(addrs, ",")
}
