#!/usr/bin/env bash
# Used for the README's "Profiling on the board" figures.
# stackctl's CPU with and without a CPU profile running, alternating 20 s windows in one run:
# the demo (camsim 720p30, both sinks) with 10 WebRTC viewers on loopback.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
R=$ROOT/target/release   # cargo build --release -p stackctl -p camsim -p sink-webrtc -p sink-recorder -p viewerload
D=$(mktemp -d)
HTTP=18181; PP=16161
$R/stackctl up --config $ROOT/config/demo.toml --pprof-port $PP --set http.port=$HTTP \
  --set source.shm=/opsmeasure_stream --set control.socket=$D/s.sock \
  --set services.camera.command=$R/camsim --set services.detector.command=$R/detector-sim \
  --set plugins.streaming.path=$R/libsink_webrtc.so --set plugins.recording.path=$R/libsink_recorder.so \
  --set plugins.recording.dir=$D/rec > $D/log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; kill $VL 2>/dev/null; rm -rf $D' EXIT
until grep -q "stack ready" $D/log; do sleep 0.5; done
$R/viewerload --url http://127.0.0.1:$HTTP --viewers 10 --duration 200s > $D/vl.log 2>&1 &
VL=$!
sleep 15
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
window() { # $1 = label, $2 = profile or idle
  local a b t0 t1
  if [ "$2" = profile ]; then
    curl -s -o $D/p.pb "http://127.0.0.1:$PP/debug/pprof/profile?seconds=20" & CP=$!
    sleep 0.3
  fi
  a=$(cpu); t0=$(date +%s.%N); sleep 19; b=$(cpu); t1=$(date +%s.%N)
  [ "$2" = profile ] && wait $CP
  echo "$1 $(echo "scale=2; 100*($b-$a)/$tck/($t1-$t0)" | bc)"
}
for i in 1 2 3; do window "idle-$i" idle; window "profile-$i" profile; done
window idle-4 idle
grep -o "CPU profile done.*" $D/log | tail -3
echo "viewers: $(tail -3 $D/vl.log | tr '\n' ' ')"
