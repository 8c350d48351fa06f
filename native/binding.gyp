{
  "variables": {
    "have_libbpf": "<!(pkg-config --exists libbpf && (command -v clang-14 || command -v clang) >/dev/null && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "svtrace_net",
      "sources": ["addon.c", "addon_rx.c", "addon_tx.c", "addon_bpf.c", "napi_util.c", "run.c", "sock.c", "rx.c", "tx.c", "analyze_join.c", "analyze_join_duckdb.c", "analyze_join_napi.c", "inspect_scan.c", "inspect_frame.c", "inspect_stream.c", "inspect_scan_napi.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-D_GNU_SOURCE"],
      "libraries": ["-lpthread", "-ldl"],
      "conditions": [
        ["have_libbpf==1", {
          "sources": ["bpf_points.c", "bpf_recorder.c"],
          "defines": ["SVT_HAVE_LIBBPF"],
          "libraries": ["-lbpf"],
          "dependencies": ["points_bpf", "recorder_bpf"]
        }]
      ]
    }
  ],
  "conditions": [
    ["have_libbpf==1", {
      "targets": [
        {
          "target_name": "points_bpf",
          "type": "none",
          "actions": [
            {
              "action_name": "compile_points_bpf",
              "inputs": ["bpf/points.bpf.c", "bpf/points.h", "bpf/build.sh"],
              "outputs": ["<(PRODUCT_DIR)/points.bpf.o"],
              "action": ["sh", "bpf/build.sh", "<(PRODUCT_DIR)/points.bpf.o"]
            }
          ]
        },
        {
          "target_name": "recorder_bpf",
          "type": "none",
          "actions": [
            {
              "action_name": "compile_recorder_bpf",
              "inputs": ["bpf/recorder.bpf.c", "bpf/recorder.h", "bpf/build.sh"],
              "outputs": ["<(PRODUCT_DIR)/recorder.bpf.o"],
              "action": ["sh", "bpf/build.sh", "<(PRODUCT_DIR)/recorder.bpf.o", "recorder.bpf.c"]
            }
          ]
        }
      ]
    }]
  ]
}
