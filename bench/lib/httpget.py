"""One raw HTTP/1.1 GET over a socket: status, headers, body and exact response size on the wire."""

import socket


def get(host, port, path, timeout=5.0, extra_headers=()):
    req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(f"{h}\r\n" for h in extra_headers) + "\r\n"
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(req.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection closed before headers from {host}:{port}: {data!r}")
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
        hmap = {k.lower(): v for k, v in headers}
        if "content-length" not in hmap:
            raise RuntimeError(f"{host}:{port}{path}: no Content-Length in response: {head!r}")
        length = int(hmap["content-length"])
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return {
        "status": status,
        "status_line": lines[0],
        "headers": headers,
        "header_map": hmap,
        "body": body[:length],
        "head_bytes": len(head) + 4,
        "body_bytes": length,
        "response_bytes": len(head) + 4 + length,
        "request_bytes": len(req),
    }
