{
  "targets": [
    {
      "target_name": "svtrace_net",
      "sources": ["addon.c", "addon_rx.c", "addon_tx.c", "napi_util.c", "run.c", "sock.c", "rx.c", "tx.c", "analyze_join.c", "analyze_join_duckdb.c", "analyze_join_napi.c", "inspect_scan.c", "inspect_frame.c", "inspect_stream.c", "inspect_scan_napi.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-D_GNU_SOURCE"],
      "libraries": ["-lpthread", "-ldl"]
    }
  ]
}
