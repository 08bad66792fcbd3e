// wsload fanout: publish-to-delivery latency. N connected clients, --devices per user; a
// writer issues writes at a fixed rate (open loop: write k starts at t0 + k/rate whatever the
// previous ones are doing, up to --writers in flight), round-robin over the users; every
// client of that user must receive it. For each delivery two latencies are kept:
//
//	ack -> delivery:   from the write's HTTP response (fully read) to the message's last byte
//	                   read on that client - the figure the target is judged on; it can be
//	                   negative, since a server may push before it answers the write;
//	start -> delivery: from just before the write's request was sent.
//
// Writes are matched to deliveries by the marker "wsb-<10-digit write id>" in the payload
// (Docket: the task title, carried in the event's data; Centrifugo: the published data). On
// Docket it also checks that each connection's event sequences go up by exactly one.
package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type write struct {
	user       int     // index into users
	measured   bool    // false during the warm-up
	sched      int64   // when it was due (ns since base)
	start, ack int64   // request sent / response read (ns since base)
	status     int     // HTTP status, 0 on a transport error
	recv       []int64 // delivery times, one per client that got it
}

type fanout struct {
	o         *options
	users     []user
	base      time.Time
	mu        sync.Mutex
	writes    []*write
	userConns []int // open connections per user at the start
	payload   []byte
	httpc     *http.Client
	// counters (atomic): deliveries that broke a rule or matched nothing
	seqErrors, misrouted, unmatched, other atomic.Int64
	msgBytes, msgCount                     atomic.Int64 // matched deliveries and their bytes
	ends                                   closeCounts
	dumped                                 atomic.Bool
}

func (f *fanout) now() int64 { return int64(time.Since(f.base)) }

func runFanout(o *options, users []user) {
	debug.SetGCPercent(400) // fewer collections on the one CPU the client has
	f := &fanout{o: o, users: users, base: time.Now(), userConns: make([]int, len(users))}
	if o.proto == "centrifugo" {
		p, err := os.ReadFile(o.payload)
		if err != nil || !bytes.Contains(p, []byte("wsb-0000000000")) {
			fatal("payload %q must hold the marker wsb-0000000000 (%v)", o.payload, err)
		}
		f.payload = bytes.TrimSpace(p)
	}
	f.httpc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.writers, MaxIdleConnsPerHost: o.writers, MaxConnsPerHost: o.writers,
		DisableCompression: true, IdleConnTimeout: 5 * time.Minute}}
	t0 := time.Now()
	clients, errs := connectAll(o, users)
	connectS := time.Since(t0).Seconds()
	open := 0
	for _, c := range clients {
		if c != nil {
			f.userConns[c.user]++
			open++
			go f.read(c)
		}
	}
	var active []int // users with at least one client: the writes go to them
	for u, n := range f.userConns {
		if n > 0 {
			active = append(active, u)
		}
	}
	fmt.Fprintf(os.Stderr, "wsload: %d/%d connected in %.1f s (%d users)\n", open, o.conns, connectS, len(active))
	out := map[string]any{"proto": o.proto, "conns": o.conns, "connected": open, "connect_failures": len(errs),
		"connect_errors": firstN(errs, 5), "connect_seconds": connectS, "users": len(active), "devices": o.devices}
	if open == 0 {
		printJSON(out)
		os.Exit(1)
	}
	time.Sleep(time.Second) // subscriptions settle before the first write
	var phases []map[string]any
	for _, r := range strings.Split(o.rates, ",") {
		rate, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || rate <= 0 {
			fatal("bad rate %q", r)
		}
		phases = append(phases, f.phase(rate, active))
		time.Sleep(500 * time.Millisecond)
	}
	out["phases"] = phases
	out["ends"] = f.ends.snapshot()
	stopping.Store(true)
	printJSON(out)
}

// read timestamps every message of one client as soon as its last byte is read.
func (f *fanout) read(c *client) {
	for {
		m, err := c.ws.ReadMessage()
		t := f.now()
		if err != nil {
			if !stopping.Load() {
				f.ends.add(endReason(c.ws, err))
			}
			return
		}
		if f.o.proto == "centrifugo" { // replies may be batched, one JSON per line
			for _, line := range bytes.Split(m, []byte("\n")) {
				if string(line) == "{}" {
					_ = c.ws.WriteText([]byte("{}"))
				} else if len(line) > 0 {
					f.deliver(c, line, t)
				}
			}
			continue
		}
		f.deliver(c, m, t)
	}
}

func (f *fanout) deliver(c *client, m []byte, t int64) {
	id, ok := marker(m)
	if !ok {
		f.other.Add(1)
		return
	}
	f.msgBytes.Add(int64(len(m)))
	f.msgCount.Add(1)
	if f.o.dump != "" && f.dumped.CompareAndSwap(false, true) {
		_ = os.WriteFile(f.o.dump, m, 0o644)
	}
	if f.o.proto == "docket" {
		if s, ok := sequence(m); ok {
			if c.lastSeq >= 0 && s != c.lastSeq+1 {
				f.seqErrors.Add(1)
			}
			c.lastSeq = s
		} else {
			f.seqErrors.Add(1)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 0 || id >= int64(len(f.writes)) || f.writes[id] == nil {
		f.unmatched.Add(1)
		return
	}
	w := f.writes[id]
	if w.user != c.user {
		f.misrouted.Add(1)
		return
	}
	w.recv = append(w.recv, t)
}

// body is the write request for write id to user u.
func (f *fanout) request(id int, u int) (*http.Request, error) {
	var req *http.Request
	var err error
	mark := fmt.Sprintf("wsb-%010d", id)
	if f.o.proto == "docket" {
		body := `{"title":"` + mark + `","description":"` + padding(f.o.pad) + `"}`
		req, err = http.NewRequest("POST", "http://"+f.o.addr+"/api/v1/tasks", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+f.users[u].token)
		}
	} else {
		data := bytes.Replace(f.payload, []byte("wsb-0000000000"), []byte(mark), 1)
		body := append([]byte(`{"channel":"#`+f.users[u].id+`","data":`), data...)
		body = append(body, '}')
		req, err = http.NewRequest("POST", "http://"+f.o.addr+"/api/publish", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("X-API-Key", f.o.apiKey)
		}
	}
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

var padOnce sync.Once
var padText string

// padding: words, so the description is ordinary text for Docket's full-text index.
func padding(n int) string {
	padOnce.Do(func() {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString("lorem ipsum dolor sit amet consectetur adipiscing elit ")
		}
		padText = b.String()[:n]
	})
	return padText
}

func (f *fanout) doWrite(id int) {
	f.mu.Lock()
	w := f.writes[id]
	f.mu.Unlock()
	req, err := f.request(id, w.user)
	if err != nil {
		return
	}
	start := f.now()
	resp, err := f.httpc.Do(req)
	status := 0
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if f.o.proto == "centrifugo" && bytes.Contains(b, []byte(`"error"`)) {
			status = -status
		}
	}
	ack := f.now()
	f.mu.Lock()
	w.start, w.ack, w.status = start, ack, status
	f.mu.Unlock()
}

// phase runs warm-up then measured writes at rate, waits for their deliveries (up to --drain
// seconds after the last answer) and summarises the measured ones.
func (f *fanout) phase(rate float64, active []int) map[string]any {
	nWarm := int(rate * f.o.warmup)
	nMeas := int(rate * f.o.duration)
	f.mu.Lock()
	first := len(f.writes)
	for k := 0; k < nWarm+nMeas; k++ {
		id := first + k
		f.writes = append(f.writes, &write{user: active[id%len(active)], measured: k >= nWarm})
	}
	f.mu.Unlock()
	jobs := make(chan int, nWarm+nMeas)
	var wg sync.WaitGroup
	for i := 0; i < f.o.writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				f.doWrite(id)
			}
		}()
	}
	var cpu0, cpuEnd float64
	var ru0, ru1 syscall.Rusage
	c0 := [6]int64{f.seqErrors.Load(), f.misrouted.Load(), f.unmatched.Load(), f.other.Load(),
		f.msgBytes.Load(), f.msgCount.Load()}
	t0 := f.now()
	interval := float64(time.Second) / rate
	var tMeas int64
	for k := 0; k < nWarm+nMeas; k++ {
		due := t0 + int64(float64(k)*interval)
		if k == nWarm {
			cpu0 = procCPU(f.o.serverPID)
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			tMeas = f.now()
		}
		if d := due - f.now(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		f.mu.Lock()
		f.writes[first+k].sched = due
		f.mu.Unlock()
		jobs <- first + k
	}
	close(jobs)
	wg.Wait()
	lastAck := f.now()
	deadline := lastAck + int64(f.o.drain*float64(time.Second))
	for f.now() < deadline && !f.complete(first+nWarm, first+nWarm+nMeas) {
		time.Sleep(5 * time.Millisecond)
	}
	cpuEnd = procCPU(f.o.serverPID)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	wall := float64(f.now()-tMeas) / 1e9
	c1 := [6]int64{f.seqErrors.Load(), f.misrouted.Load(), f.unmatched.Load(), f.other.Load(),
		f.msgBytes.Load(), f.msgCount.Load()}
	res := f.summarise(rate, first+nWarm, first+nWarm+nMeas)
	res["warmup_writes"] = nWarm
	res["wall_s"] = wall
	res["server_cpu_s"] = cpuEnd - cpu0
	if d, ok := res["delivered"].(int); ok && d > 0 {
		res["server_cpu_s_per_1k_deliveries"] = (cpuEnd - cpu0) / float64(d) * 1000
	}
	res["client_cpu_s"] = rusageS(&ru1) - rusageS(&ru0)
	res["server_rss_kib"] = procRSS(f.o.serverPID)
	res["seq_errors"] = c1[0] - c0[0]
	res["misrouted"] = c1[1] - c0[1]
	res["unmatched"] = c1[2] - c0[2]
	res["other_messages"] = c1[3] - c0[3]
	if n := c1[5] - c0[5]; n > 0 {
		res["mean_message_bytes"] = float64(c1[4]-c0[4]) / float64(n)
	}
	fmt.Fprintf(os.Stderr, "wsload: rate %g: delivered %v/%v ack->delivery p50 %.3f p99 %.3f max %.3f ms\n", rate,
		res["delivered"], res["expected"], res["ack_to_delivery_ms"].(map[string]any)["p50"],
		res["ack_to_delivery_ms"].(map[string]any)["p99"], res["ack_to_delivery_ms"].(map[string]any)["max"])
	return res
}

func (f *fanout) complete(from, to int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := from; id < to; id++ {
		w := f.writes[id]
		if w.status > 0 && len(w.recv) < f.userConns[w.user] {
			return false
		}
	}
	return true
}

func (f *fanout) summarise(rate float64, from, to int) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ackLat, startLat, writeLat, late []float64
	expected, delivered, dups, errs, negative := 0, 0, 0, 0, 0
	var firstStart, lastStart, lastRecv int64 = math.MaxInt64, 0, 0
	okStatus := 201
	if f.o.proto == "centrifugo" {
		okStatus = 200
	}
	statuses := map[string]int{}
	for id := from; id < to; id++ {
		w := f.writes[id]
		firstStart, lastStart = min(firstStart, w.start), max(lastStart, w.start)
		late = append(late, float64(w.start-w.sched)/1e6)
		if w.status != okStatus {
			errs++
			statuses[strconv.Itoa(w.status)]++
			continue
		}
		writeLat = append(writeLat, float64(w.ack-w.start)/1e6)
		want := f.userConns[w.user]
		expected += want
		delivered += min(len(w.recv), want)
		dups += max(0, len(w.recv)-want)
		for _, t := range w.recv {
			ackLat = append(ackLat, float64(t-w.ack)/1e6)
			startLat = append(startLat, float64(t-w.start)/1e6)
			if t < w.ack {
				negative++
			}
			lastRecv = max(lastRecv, t)
		}
	}
	n := to - from
	span := float64(lastStart-firstStart) / 1e9
	res := map[string]any{"rate": rate, "writes": n, "write_errors": errs, "write_error_statuses": statuses,
		"expected": expected, "delivered": delivered, "duplicates": dups,
		"delivered_ratio":    ratio(delivered, expected),
		"ack_to_delivery_ms": pct(ackLat), "start_to_delivery_ms": pct(startLat),
		"write_ms": pct(writeLat), "writer_lateness_ms": pct(late),
		"delivered_before_ack": negative,
	}
	if span > 0 {
		res["achieved_rate"] = float64(n-1) / span
	}
	return res
}

func ratio(a, b int) any {
	if b == 0 {
		return nil
	}
	return float64(a) / float64(b)
}

// pct: exact percentiles of the samples (nearest rank), in the samples' unit.
func pct(v []float64) map[string]any {
	if len(v) == 0 {
		return map[string]any{"n": 0, "p50": nil, "p90": nil, "p99": nil, "p99_9": nil, "max": nil}
	}
	sort.Float64s(v)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return map[string]any{"n": len(v), "min": v[0], "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
		"p99_9": at(0.999), "max": v[len(v)-1], "mean": sum / float64(len(v))}
}

func rusageS(r *syscall.Rusage) float64 {
	return float64(r.Utime.Sec+r.Stime.Sec) + float64(r.Utime.Usec+r.Stime.Usec)/1e6
}

// procCPU: utime+stime of a process from /proc/PID/stat (USER_HZ = 100 on Linux).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(fs[11], 64)
	s, _ := strconv.ParseFloat(fs[12], 64)
	return (u + s) / 100
}

// procRSS: VmRSS of a process in KiB.
func procRSS(pid int) int {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}
