"""Shared helpers for Docket's benchmark suite (standard library only).

Modules:
  env      repository paths, git state, machine description, tool installation
  procs    starting pinned processes, waiting for ports, /proc CPU and memory readings
  wrk      running wrk and parsing its output (latency percentiles included)
  httpget  one raw HTTP/1.1 request over a socket, to verify a server before measuring
  stats    medians, spreads and ratios following perf.md section 6
  report   text tables, the run context (commands, durations) and the JSON writer
"""
