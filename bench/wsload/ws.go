// A minimal RFC 6455 WebSocket client over net.Conn, just what the benchmark needs: the
// opening handshake (with the Accept check), masked text frames out, text / ping / pong /
// close frames in (fragmented messages reassembled), pong answered from the reader.
//
// Why not a library: the idle-memory part holds thousands of connections per process, and the
// fan-out part timestamps a message the moment its last byte is read. A library's read loop,
// buffers and goroutines would sit between the socket and the timestamp; here there is one
// goroutine per connection, one small bufio.Reader and nothing else.
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// readBufSize is the bufio.Reader size per connection: one ~1 KB event frame fits; larger
// frames are read through it in pieces.
const readBufSize = 2048

type wsConn struct {
	c         net.Conn
	br        *bufio.Reader
	wmu       sync.Mutex // writes come from the reader (pong) and from the owner
	msg       []byte     // reassembly of a fragmented message
	CloseCode int        // close code the server sent, 0 if none
	CloseText string
}

// errClosed: the server sent a close frame (CloseCode says which).
var errClosed = errors.New("websocket closed by server")

// dialWS connects from src (a loopback source address, "" = any) to addr, sends the upgrade for
// path with the extra headers and checks the 101 answer.
func dialWS(addr, src, path string, headers map[string]string, timeout time.Duration) (*wsConn, error) {
	d := net.Dialer{Timeout: timeout}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, addr, key)
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, b.String()); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, readBufSize)
	status, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	accept := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake headers: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Accept") {
			accept = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		body := make([]byte, 300)
		n, _ := br.Read(body)
		c.Close()
		return nil, fmt.Errorf("handshake refused: %s %s", strings.TrimSpace(status), body[:n])
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if accept != base64.StdEncoding.EncodeToString(sum[:]) {
		c.Close()
		return nil, fmt.Errorf("bad Sec-WebSocket-Accept %q", accept)
	}
	_ = c.SetDeadline(time.Time{})
	return &wsConn{c: c, br: br}, nil
}

// writeFrame sends one masked frame (clients must mask, RFC 6455 5.3).
func (w *wsConn) writeFrame(op byte, payload []byte) error {
	hdr := make([]byte, 0, 14+len(payload))
	hdr = append(hdr, 0x80|op)
	n := len(payload)
	switch {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 65536:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	for i, c := range payload {
		hdr = append(hdr, c^mask[i&3])
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_, err := w.c.Write(hdr)
	return err
}

func (w *wsConn) WriteText(s []byte) error { return w.writeFrame(0x1, s) }

// ReadMessage returns the next complete text (or binary) message, answering pings on the way.
// The returned slice is valid until the next call.
func (w *wsConn) ReadMessage() ([]byte, error) {
	w.msg = w.msg[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		if h[1]&0x80 != 0 {
			return nil, errors.New("server frame is masked")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(e[:])
		}
		if n > 16<<20 {
			return nil, fmt.Errorf("frame of %d bytes", n)
		}
		start := len(w.msg)
		w.msg = append(w.msg, make([]byte, n)...)
		if _, err := io.ReadFull(w.br, w.msg[start:]); err != nil {
			return nil, err
		}
		switch op {
		case 0x8: // close: echo and stop
			p := w.msg[start:]
			if len(p) >= 2 {
				w.CloseCode = int(binary.BigEndian.Uint16(p))
				w.CloseText = string(p[2:])
			}
			_ = w.writeFrame(0x8, p[:min(len(p), 2)])
			return nil, errClosed
		case 0x9:
			p := append([]byte(nil), w.msg[start:]...)
			w.msg = w.msg[:start]
			if err := w.writeFrame(0xA, p); err != nil {
				return nil, err
			}
			continue
		case 0xA:
			w.msg = w.msg[:start]
			continue
		}
		if fin {
			return w.msg, nil
		}
	}
}

func (w *wsConn) Close() error { return w.c.Close() }
