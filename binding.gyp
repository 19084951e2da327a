{
  "targets": [
    {
      "target_name": "sockopt",
      "sources": ["boot/netif/native/sockopt.c"]
    },
    {
      "target_name": "tftpdata",
      "sources": ["boot/tftp/native/tftp_data.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lm", "-lpthread"]
    },
    {
      "target_name": "flistcodec",
      "sources": ["flist/native/chunk_codec.c", "flist/native/unpack_files.c"],
      "cflags": ["-Wall", "-Wextra"],
      "libraries": ["-lm"]
    },
    {
      "target_name": "sendfile",
      "sources": ["boot/http/native/sendfile.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "dhcpio",
      "sources": ["boot/dhcp/native/dhcp_io.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
