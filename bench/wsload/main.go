// wsload - the load client of `bench/run ws` (bench/benches/ws.py): WebSocket fan-out latency
// and idle connections, against Docket (/api/v1/ws) or Centrifugo (/connection/websocket).
//
//	wsload fanout [flags]  connect --conns clients (--devices per user), then for each of --rates:
//	                       --warmup s then --duration s of writes at that fixed rate, round-robin
//	                       over the users, and time every delivery; one JSON document on stdout.
//	wsload idle [flags]    connect --conns clients, print {"ready":...} on stdout, then hold them
//	                       (answering pings) until SIGTERM.
//
// Loopback only: the harness passes 127.0.0.x addresses. Every run is bounded by its flags.
// Standard library only; the WebSocket client is ws.go.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	proto      string        // "docket" or "centrifugo"
	addr       string        // server host:port (WebSocket and HTTP)
	src        string        // local source address of the client sockets ("" = kernel's choice)
	usersPath  string        // TSV: user id, token (one line per user)
	devices    int           // connections per user
	conns      int           // connections to open
	userOffset int           // first user (line) this process uses
	dialConc   int           // handshakes in flight at once
	rates      string        // fanout: comma-separated writes/s
	duration   float64       // fanout: measured seconds per rate
	warmup     float64       // fanout: unmeasured seconds per rate before it
	writers    int           // fanout: HTTP connections / concurrent writes at most
	pad        int           // fanout, docket: description length (sizes the event)
	payload    string        // fanout, centrifugo: file with the JSON data published (holds the marker)
	apiKey     string        // fanout, centrifugo: HTTP API key
	serverPID  int           // fanout: server process, for its CPU time per phase
	drain      float64       // fanout: seconds to wait for late deliveries after a phase
	dump       string        // fanout: write the first delivered message here
	timeout    time.Duration // per-handshake timeout
}

type user struct {
	id, token string
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "fanout" && os.Args[1] != "idle") {
		fmt.Fprintln(os.Stderr, "usage: wsload fanout|idle [flags] (see main.go)")
		os.Exit(2)
	}
	mode := os.Args[1]
	var o options
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.StringVar(&o.proto, "proto", "docket", "docket or centrifugo")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "server host:port")
	fs.StringVar(&o.src, "src", "", "source address for client sockets")
	fs.StringVar(&o.usersPath, "users", "", "TSV file: user id, token")
	fs.IntVar(&o.devices, "devices", 4, "connections per user")
	fs.IntVar(&o.conns, "conns", 100, "connections")
	fs.IntVar(&o.userOffset, "user-offset", 0, "first user line used")
	fs.IntVar(&o.dialConc, "dial-concurrency", 64, "handshakes in flight")
	fs.StringVar(&o.rates, "rates", "200", "writes per second, comma-separated")
	fs.Float64Var(&o.duration, "duration", 10, "measured seconds per rate")
	fs.Float64Var(&o.warmup, "warmup", 2, "unmeasured seconds per rate")
	fs.IntVar(&o.writers, "writers", 64, "concurrent writes at most")
	fs.IntVar(&o.pad, "pad", 600, "docket: description length")
	fs.StringVar(&o.payload, "payload", "", "centrifugo: JSON data file with the marker wsb-0000000000")
	fs.StringVar(&o.apiKey, "api-key", "", "centrifugo: HTTP API key")
	fs.IntVar(&o.serverPID, "server-pid", 0, "server PID (CPU time per phase)")
	fs.Float64Var(&o.drain, "drain", 5, "seconds to wait for late deliveries")
	fs.StringVar(&o.dump, "dump", "", "write the first delivered message to this file")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "handshake timeout")
	_ = fs.Parse(os.Args[2:])
	if o.proto != "docket" && o.proto != "centrifugo" {
		fatal("unknown -proto %q", o.proto)
	}
	users, err := readUsers(o.usersPath)
	if err != nil {
		fatal("%v", err)
	}
	if mode == "idle" {
		runIdle(&o, users)
		return
	}
	runFanout(&o, users)
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "wsload: "+f+"\n", a...)
	os.Exit(1)
}

func readUsers(path string) ([]user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []user
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		id, tok, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			out = append(out, user{id, tok})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no users in %s", path)
	}
	return out, sc.Err()
}

// client is one subscriber connection and what it saw.
type client struct {
	ws      *wsConn
	user    int   // index into users
	lastSeq int64 // docket: last event sequence, -1 before the first
}

// connectAll opens o.conns clients, connection i belonging to user (userOffset + i/devices) mod
// len(users), o.dialConc handshakes at a time. Returns the clients and the failures.
func connectAll(o *options, users []user) ([]*client, []string) {
	out := make([]*client, o.conns)
	var errs []string
	var mu sync.Mutex
	sem := make(chan struct{}, o.dialConc)
	var wg sync.WaitGroup
	for i := 0; i < o.conns; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			u := (o.userOffset + i/o.devices) % len(users)
			c, err := connectOne(o, users[u])
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			out[i] = &client{ws: c, user: u, lastSeq: -1}
		}(i)
	}
	wg.Wait()
	return out, errs
}

// connectOne does the handshake and the protocol's own start: Docket answers a ping message
// (proving the socket is authenticated and served); Centrifugo answers the connect command
// with the user's personal channel among its server-side subscriptions.
func connectOne(o *options, u user) (*wsConn, error) {
	if o.proto == "docket" {
		ws, err := dialWS(o.addr, o.src, "/api/v1/ws", map[string]string{"Authorization": "Bearer " + u.token}, o.timeout)
		if err != nil {
			return nil, err
		}
		if err := await(ws, o.timeout, []byte(`{"type":"ping"}`), func(m []byte) bool {
			return bytes.Contains(m, []byte(`"type":"pong"`))
		}); err != nil {
			ws.Close()
			return nil, err
		}
		return ws, nil
	}
	ws, err := dialWS(o.addr, o.src, "/connection/websocket", nil, o.timeout)
	if err != nil {
		return nil, err
	}
	cmd := []byte(`{"id":1,"connect":{"token":"` + u.token + `","name":"wsload"}}`)
	if err := await(ws, o.timeout, cmd, func(m []byte) bool {
		return bytes.Contains(m, []byte(`"id":1`)) && bytes.Contains(m, []byte(`"subs"`)) &&
			bytes.Contains(m, []byte(`"#`+u.id+`"`))
	}); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// await sends msg and reads until ok(reply) or the timeout.
func await(ws *wsConn, timeout time.Duration, msg []byte, ok func([]byte) bool) error {
	_ = ws.c.SetDeadline(time.Now().Add(timeout))
	defer ws.c.SetDeadline(time.Time{})
	if err := ws.WriteText(msg); err != nil {
		return err
	}
	for {
		m, err := ws.ReadMessage()
		if err != nil {
			if err == errClosed {
				return fmt.Errorf("closed %d %s", ws.CloseCode, ws.CloseText)
			}
			return err
		}
		if ok(m) {
			return nil
		}
		if bytes.Contains(m, []byte(`"error"`)) {
			return fmt.Errorf("refused: %.300s", m)
		}
	}
}

// marker finds "wsb-" followed by 10 digits (the write id in the task title) in m.
func marker(m []byte) (int64, bool) {
	i := bytes.Index(m, []byte("wsb-"))
	if i < 0 || i+14 > len(m) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(m[i+4:i+14]), 10, 64)
	return n, err == nil
}

// sequence reads the first "sequence":N in a Docket event message.
func sequence(m []byte) (int64, bool) {
	i := bytes.Index(m, []byte(`"sequence":`))
	if i < 0 {
		return 0, false
	}
	j := i + len(`"sequence":`)
	k := j
	for k < len(m) && m[k] >= '0' && m[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(m[j:k]), 10, 64)
	return n, err == nil
}

// closeCounts tallies how connections ended (close code or read error), for the report.
type closeCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *closeCounts) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *closeCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func endReason(ws *wsConn, err error) string {
	if err == errClosed {
		return fmt.Sprintf("close %d %s", ws.CloseCode, ws.CloseText)
	}
	return "read error: " + err.Error()
}

var stopping atomic.Bool

func printJSON(v any) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}
