"""Shared helpers for Docket's benchmark suite (standard library only).

Modules:
  env      repository paths, git state, machine description, tool installation
  procs    starting pinned processes, waiting for ports, /proc CPU and memory readings
  wrk      running wrk and parsing its output (latency percentiles included)
  httpget  one raw HTTP/1.1 request over a socket, to verify a server before measuring
  stats    medians, spreads and ratios following perf.md section 6
  report   text tables, the run context (commands, durations) and the JSON writer
  wrkscript  wrk with a Lua request script and headers; counted loads (stop at a quota)
  taskgen  deterministic task bodies, the same in Python and in wrk's Lua (taskgen.lua)
  httpjson keep-alive JSON client for setup and checks around a measurement
  disk     the disk under a path and its flush counter (/proc/diskstats)
"""
