// wsload idle: hold authenticated connections that send nothing (pings are answered), for the
// server's idle memory per connection. Prints {"ready":...} once all handshakes are done,
// {"status":...} on SIGUSR1 (how many are still open), and exits on SIGTERM/SIGINT.
package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func runIdle(o *options, users []user) {
	t0 := time.Now()
	clients, errs := connectAll(o, users)
	var open atomic.Int64
	var ends closeCounts
	for _, c := range clients {
		if c == nil {
			continue
		}
		open.Add(1)
		go idleRead(o, c, &open, &ends)
	}
	printJSON(map[string]any{"ready": open.Load(), "failed": len(errs), "errors": firstN(errs, 5),
		"seconds": time.Since(t0).Seconds(), "src": o.src})
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		if s == syscall.SIGUSR1 {
			printJSON(map[string]any{"status": open.Load(), "ended": ends.snapshot()})
			continue
		}
		stopping.Store(true)
		os.Exit(0) // the kernel closes the sockets
	}
}

// idleRead consumes whatever the server sends; Centrifugo's application-level ping is an
// empty JSON object that the client must echo (protocol v2), WebSocket pings are answered in
// ReadMessage.
func idleRead(o *options, c *client, open *atomic.Int64, ends *closeCounts) {
	for {
		m, err := c.ws.ReadMessage()
		if err != nil {
			open.Add(-1)
			ends.add(endReason(c.ws, err))
			return
		}
		if o.proto == "centrifugo" && string(m) == "{}" {
			_ = c.ws.WriteText([]byte("{}"))
		}
	}
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
