module docket.local/bench/wsload

go 1.24
