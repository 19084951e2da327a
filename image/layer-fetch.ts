// The /init step that fetches the image's `at: boot` layers, as busybox sh
// text for image/init.ts. Once the network is up, for each layer listed in
// /etc/zeroboot/layers (`<name>:<sha256 of its .fl>` per line, written by
// the builder from the manifest):
//   GET <server>/flists/<name>.fl, refused unless its sha256 is the baked
//   one (a swapped or corrupted .fl on the server is not retried: it fails
//   at once with error=sha256-mismatch);
//   mounts a tmpfs on /layers/<name> and runs
//   `zeroboot flist unpack <fl> /layers/<name> --store <server>/chunks`
//   (each chunk is checked against its id by the unpack);
//   prints `ZEROBOOT-LAYER name=<n> files=<n> bytes=<n>`.
// The server is `zeroboot.server=<host[:port]>` (or an http:// URL) from the
// kernel command line, else the DHCP server (port 80). A failed download or
// unpack (503 from a busy server, a refused connection, a timeout) is
// retried after an exponential backoff (0.5 s doubling to 8 s) with jitter
// (half the delay plus a random part of the other half, so nodes that
// booted together spread out), for at most `zeroboot.layerwait=<seconds>`
// (default 120) per layer; then `ZEROBOOT-FAIL reason=layer-fetch name=<n>
// error=<fetch|unpack|sha256-mismatch> tries=<n> server=<url> said=<last
// line of wget's or the unpack's errors>`.
import { ZEROBOOT_PATH } from './node-runtime.ts';

/** The list of at-boot layers in the initramfs, and where they are unpacked on the node. */
export const LAYER_LIST_PATH = 'etc/zeroboot/layers';
export const LAYERS_DIR = '/layers';
export const DEFAULT_LAYER_WAIT_SECONDS = 120;

/** The list file's text: one `<name>:<sha256>` line per layer. */
export function layerList(layers: readonly { name: string; sha256: string }[]): string {
  return layers.map((l) => `${l.name}:${l.sha256}\n`).join('');
}

/** Lines for /init's `case "$w"` over the command line words. */
export function layerArgCases(): string {
  return `    zeroboot.server=*) SERVER=\${w#zeroboot.server=} ;;
    zeroboot.layerwait=*) LAYER_WAIT=\${w#zeroboot.layerwait=} ;;`;
}

/**
 * The shell functions: `layer_fetch <name> <sha256>` prints ZEROBOOT-LAYER
 * and returns 0, or prints nothing and returns 1 with $LAYER_ERROR and
 * $LAYER_TRIES set. Needs `say`, $SERVER (a URL), $LAYER_WAIT and
 * $ZEROBOOT (the zeroboot program), $LAYERS_DIR if not /layers and
 * $LAYER_TMP (downloads, logs) if not /run/zeroboot/layers; stands alone so a test can run it
 * under busybox sh on the host.
 */
export function layerFetchFunctions(): string {
  return `# A random number from 0 to $1 - 1.
layer_random() {
  echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 ))
}

layer_fetch() {
  ln=$1
  lsum=$2
  ltmp=\${LAYER_TMP:-/run/zeroboot/layers}
  lfl=$ltmp/$ln.fl
  ldir=\${LAYERS_DIR:-${LAYERS_DIR}}/$ln
  mkdir -p "$ltmp" "$ldir"
  lstart=$(date +%s)
  ldelay=500
  LAYER_TRIES=0
  while :; do
    LAYER_TRIES=$((LAYER_TRIES + 1))
    LAYER_ERROR=
    rm -f "$lfl"
    # timeout, not wget -T: Debian's busybox 1.35 wget crashes (SIGSEGV) with -T.
    if ! timeout 60 wget -q -O "$lfl" "$SERVER/flists/$ln.fl" 2>$ltmp/$ln.log; then
      LAYER_ERROR=fetch
    elif [ "$(sha256sum "$lfl" | cut -d ' ' -f 1)" != "$lsum" ]; then
      # The server holds another file than the image was built with: waiting will not fix it.
      LAYER_ERROR=sha256-mismatch
      return 1
    else
      # A fresh tree for each try ($LAYER_NO_TMPFS: a plain folder, for a test on the host).
      if [ -n "$LAYER_NO_TMPFS" ]; then
        rm -rf "$ldir" && mkdir -p "$ldir"
      else
        mountpoint -q "$ldir" && umount "$ldir"
        mount -t tmpfs -o mode=0755 tmpfs "$ldir"
      fi
      if "$ZEROBOOT" flist unpack "$lfl" "$ldir" --store "$SERVER/chunks" --json >$ltmp/$ln.json 2>$ltmp/$ln.log; then
        lsum_json=$(cat $ltmp/$ln.json)
        lfiles=$(echo "$lsum_json" | sed -n 's/.*"files":\\([0-9]*\\).*/\\1/p')
        lbytes=$(echo "$lsum_json" | sed -n 's/.*"bytes":\\([0-9]*\\).*/\\1/p')
        say "ZEROBOOT-LAYER name=$ln files=$lfiles bytes=$lbytes"
        return 0
      fi
      LAYER_ERROR=unpack
    fi
    # Equal jitter: half the delay, plus a random part of the other half.
    lsleep=$((ldelay / 2 + $(layer_random $((ldelay / 2 + 1)))))
    [ $(( $(date +%s) - lstart + (lsleep + 999) / 1000 )) -gt "$LAYER_WAIT" ] && return 1
    sleep "$((lsleep / 1000)).$(printf %03d $((lsleep % 1000)))"
    ldelay=$((ldelay * 2))
    [ "$ldelay" -gt 8000 ] && ldelay=8000
  done
}`;
}

/** The step: after ZEROBOOT-UP, before zeroboot.run / zeroboot.exec start (they may use the layers). */
export function layerStep(): string {
  return `if [ -s /${LAYER_LIST_PATH} ]; then
  case "$LAYER_WAIT" in ''|*[!0-9]*) LAYER_WAIT=${DEFAULT_LAYER_WAIT_SECONDS} ;; esac
  [ -n "$SERVER" ] || SERVER=$serverid
  case "$SERVER" in http://*) ;; *) SERVER=http://$SERVER ;; esac
  ZEROBOOT=/${ZEROBOOT_PATH}
  for entry in $(cat /${LAYER_LIST_PATH}); do
    # the last line wget or the unpack wrote, spaces as _, so the marker stays one line of words
    layer_fetch "\${entry%%:*}" "\${entry#*:}" || fail "layer-fetch name=\${entry%%:*} error=$LAYER_ERROR tries=$LAYER_TRIES server=$SERVER said=$(tail -n 1 "\${LAYER_TMP:-/run/zeroboot/layers}/\${entry%%:*}.log" 2>/dev/null | tr ' ' _ | cut -c 1-160)"
  done
fi`;
}
