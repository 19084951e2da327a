{
  "targets": [
    {
      "target_name": "sockopt",
      "sources": ["boot/netif/native/sockopt.c"]
    }
  ]
}
