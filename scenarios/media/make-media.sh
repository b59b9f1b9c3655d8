#!/usr/bin/env bash
# Regenerates the pinned media samples in this folder and their MANIFEST.toml.
#
# Run by hand, once, when the samples change; CI never runs it (the tests read the committed files).
# Needs Debian's ffmpeg (libopus, libvpx), espeak-ng, sox, fonts-dejavu-core and python3 (stdlib only).
#
#   scenarios/media/make-media.sh            # all samples + MANIFEST.toml
#   scenarios/media/make-media.sh screen.ivf # only the named samples; the others stay as committed
#   scenarios/media/make-media.sh levels IN.wav OUT.ogg   # a .levels sidecar for your own Opus file
#
# Audio sizes: the on-wire overhead per audio packet is 76 B (RTP 12, header extensions 12, SRTP tag 10,
# UDP 8, IPv4 20, Ethernet 14; see src/media/wire.rs). At 50 packets/s a stream of P payload bytes costs
# (P + 76) * 400 bit/s, so 147 B gives 89.2 kbps and 167 B gives 97.2 kbps; Opus in hard CBR at
# 58.8 kbps and 66.8 kbps makes exactly those packet sizes.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

SANS=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
BOLD=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
MONO=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf

FF=(ffmpeg -hide_banner -loglevel error -y)

# Per 20 ms frame of a 48 kHz mono WAV, the RFC 6464 level (-dBov, 0 loud .. 127 silent, full-scale
# square wave = 0 dBov), one byte per Opus packet of OUT.ogg (padded with 127 past the end of the audio).
levels() {
    local wav="$1" ogg="$2"
    local packets
    packets="$(ffprobe -v error -select_streams a:0 -count_packets -show_entries stream=nb_read_packets \
        -of csv=p=0 "$ogg")"
    python3 - "$wav" "$packets" "$ogg.levels" <<'PY'
import array, math, sys, wave
wav, packets, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with wave.open(wav) as w:
    assert w.getframerate() == 48000 and w.getnchannels() == 1 and w.getsampwidth() == 2, "need 48 kHz mono s16"
    pcm = array.array("h", w.readframes(w.getnframes()))
levels = bytearray()
for i in range(packets):
    frame = pcm[i * 960:(i + 1) * 960]
    ms = sum(s * s for s in frame) / 960.0 if len(frame) else 0.0
    if ms <= 0.0:
        levels.append(127)
    else:
        db = -10.0 * math.log10(ms / (32768.0 * 32768.0))
        levels.append(max(0, min(127, int(round(db)))))
open(out, "wb").write(bytes(levels))
PY
}

if [[ "${1:-}" == levels ]]; then
    levels "$2" "$3"
    exit 0
fi

# Sample names given as arguments: only those are encoded (MANIFEST.toml is still re-measured for every
# file). VP8 encodes with libvpx's realtime deadline and a positive -cpu-used pick their speed from the
# encode time, so they are not bit-reproducible; this keeps the committed ones when another sample changes.
ALL=(speech-89.ogg speech-97.ogg conversation.ogg screen.ivf screen_h.ivf screen_l.ivf camera.ivf)
ONLY=("$@")
for name in "${ONLY[@]}"; do
    [[ " ${ALL[*]} " == *" $name "* ]] || { echo "unknown sample $name (one of: ${ALL[*]})" >&2; exit 2; }
done
wanted() { [[ ${#ONLY[@]} -eq 0 || " ${ONLY[*]} " == *" $1 "* ]]; }

COMMANDS="$WORK/commands.tsv"
: >"$COMMANDS"
# Runs an encode command and records it (with the scratch folder written as $WORK) for the manifest;
# a sample not wanted this time is left alone (the manifest keeps the command that made it).
record() {
    local name="$1"
    shift
    wanted "$name" || return 0
    local cmd="$*"
    printf '%s\t%s\n' "$name" "${cmd//$WORK/\$WORK}" >>"$COMMANDS"
    (cd "$HERE" && "$@")
}

# ---------------------------------------------------------------------------------------------------
# Speech: several espeak-ng voices reading varied sentences, resampled to 48 kHz mono.
speak() { # voice words-per-minute out text
    espeak-ng -v "$1" -s "$2" -w "$WORK/raw.wav" "$4"
    sox -R "$WORK/raw.wav" -r 48000 -c 1 -b 16 "$3" gain -n -3
}
silence() { # seconds out
    sox -R -n -r 48000 -c 1 -b 16 "$2" trim 0 "$1"
}

voices=(en-us+f3 en-gb+m3 en-us+m1 en-gb-scotland+f2 en-gb-x-rp+m4 en-us+f1)
sentences=(
    "Good morning everyone, thanks for joining the weekly capacity review."
    "Last week the media server forwarded about two thousand audio streams at peak, with no packet loss."
    "The screen share in the design review ran at one point six megabits for almost an hour."
    "If we move the recorder jobs to the bigger instance type, we can run eight of them at once."
    "Before we decide, I would like to see the CPU graphs for the large calls, not just the averages."
    "Let's schedule a load test on Thursday afternoon and compare it with the published tables."
    "One more thing: the transcription backlog is growing, so we need another worker for the weekend."
    "Okay, that sounds like a plan. I will write up the notes and share them in the channel."
)
parts=()
for i in "${!sentences[@]}"; do
    speak "${voices[$((i % ${#voices[@]}))]}" 170 "$WORK/s$i.wav" "${sentences[$i]}"
    silence 0.30 "$WORK/p$i.wav"
    parts+=("$WORK/s$i.wav" "$WORK/p$i.wav")
done
sox -R "${parts[@]}" "$WORK/speech.wav"

# Conversation: talk spurts by different voices with real pauses (1.2 s to 2.6 s) between them.
spurts=(
    "Can everyone hear me?"
    "Yes, loud and clear."
    "Great. Let's start with the numbers from yesterday's test run."
    "The join latency went up after the upgrade, mostly in the ICE phase."
    "Interesting. Was that on the small instance?"
    "No, on both. I'll send the graphs."
    "Thanks. Anything else before we wrap up?"
    "Just that the new samples are committed."
    "Perfect. See you all tomorrow."
)
pauses=(1.2 1.8 1.4 2.6 1.5 2.0 1.3 2.2 1.6)
parts=()
for i in "${!spurts[@]}"; do
    speak "${voices[$((i % 2 == 0 ? 0 : 1))]}" 165 "$WORK/c$i.wav" "${spurts[$i]}"
    silence "${pauses[$i]}" "$WORK/q$i.wav"
    parts+=("$WORK/c$i.wav" "$WORK/q$i.wav")
done
sox -R "${parts[@]}" "$WORK/conversation.wav"

opus() { # in.wav bitrate out.ogg
    record "$3" "${FF[@]}" -i "$1" -map_metadata -1 -c:a libopus -b:a "$2" -vbr off -application voip \
        -frame_duration 20 -ar 48000 -ac 1 -page_duration 20000 -serial_offset 1 \
        -fflags +bitexact -flags:a +bitexact "$3"
    if wanted "$3"; then levels "$1" "$HERE/$3"; fi
}
opus "$WORK/speech.wav" 58800 speech-89.ogg
opus "$WORK/speech.wav" 66800 speech-97.ogg
opus "$WORK/conversation.wav" 66800 conversation.ogg

# ---------------------------------------------------------------------------------------------------
# Screen: 1920x1080 slides (a new slide every 4 s), a scrolling code panel, a clock and a moving cursor.
# Every frame depends only on t, so the 5 fps and 20 fps renders show the same picture at the same time.
SECONDS_LONG=24
titles=("Calls capacity review" "Join latency by phase" "Screen share bandwidth" "Recorder jobs"
    "Load test plan" "Action items")
bullets=(
    "100 calls x 8 users|2 unmuted per call|97 kbps per forwarded stream|CPU 49 percent on c7i.xlarge|Memory 1.46 GB"
    "WebSocket connect 40 ms|Join and offer 120 ms|ICE and DTLS 310 ms|First audio 450 ms|p99 under one second"
    "Simulcast l at 500 kbps and 5 fps|Simulcast h at 2.5 Mbps and 20 fps|Viewers start on l|Upgrade after 10 s backoff|PLI once per second"
    "One job per recording|Runner in Docker|Upload when done|Retries on failure|Eight jobs per instance"
    "Ramp 10 users per second|Hold 10 minutes|Scrape metrics every second|Compare with baseline|Fail CI on regression"
    "Write the notes|Share the graphs|Book the test hosts|Update the tables|Review next week"
)
python3 - "$WORK/code.txt" <<'PY'
import sys
lines = []
for i in range(120):
    lines.append(f"{i+1:3d}  fn handle_{i % 7}(ctx: &mut Ctx, pkt: Packet) -> Result<(), Error> {{")
    lines.append(f"       let level = ctx.levels[{i % 50}].saturating_sub({i % 13});  // dBov")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
colors=(0x1e325c 0x0b6e4f 0x7a1f3d 0x5c3b1e 0x2d4d7a 0x3d1e5c)
screen_graph() { # fps
    local fps="$1" g=""
    g+="color=c=0xf5f5f0:s=1920x1080:r=$fps:d=$SECONDS_LONG,format=yuv420p"
    # The code panel first, masked above and below, so the slide header bars are drawn over it.
    g+=",drawbox=x=1000:y=200:w=880:h=820:color=0x272822:t=fill"
    g+=",drawtext=fontfile=$MONO:textfile=$WORK/code.txt:x=1020:y=220-mod(t*60\,2000):fontsize=22:fontcolor=0xf8f8f2:line_spacing=6"
    g+=",drawbox=x=1000:y=0:w=880:h=200:color=0xf5f5f0:t=fill,drawbox=x=1000:y=1020:w=880:h=60:color=0xf5f5f0:t=fill"
    local k
    for k in "${!titles[@]}"; do
        local t0=$((k * 4)) t1=$((k * 4 + 4))
        local en="enable='between(t,$t0,$t1)'"
        g+=",drawbox=x=0:y=0:w=1920:h=140:color=${colors[$k]}:t=fill:$en"
        g+=",drawtext=fontfile=$BOLD:text='${titles[$k]}':x=60:y=40:fontsize=64:fontcolor=white:$en"
        local IFS='|' j=0 b
        for b in ${bullets[$k]}; do
            g+=",drawtext=fontfile=$SANS:text='- $b':x=80:y=$((230 + j * 90)):fontsize=44:fontcolor=0x222222:$en"
            j=$((j + 1))
        done
    done
    g+=",drawtext=fontfile=$MONO:text='%{pts\:hms}':x=1600:y=1030:fontsize=32:fontcolor=0x444444"
    g+="[bg];color=c=black:s=18x28:r=$fps:d=$SECONDS_LONG,drawbox=x=2:y=2:w=14:h=24:color=white:t=2[cur];"
    g+="[bg][cur]overlay=x='900+700*sin(t*0.7)':y='560+380*sin(t*1.3)',format=yuv420p"
    printf '%s' "$g"
}
vp8() { # graph fps bitrate gop out [deadline cpu-used]
    record "$5" "${FF[@]}" -f lavfi -i "$1" -frames:v "$(($2 * SECONDS_LONG))" -c:v libvpx -deadline "${6:-realtime}" \
        -cpu-used "${7:-4}" -threads 2 -b:v "$3" -minrate "$3" -maxrate "$3" -bufsize "$3" -undershoot-pct 100 \
        -qmin 2 -qmax 63 -g "$4" -keyint_min "$4" -auto-alt-ref 0 -lag-in-frames 0 -static-thresh 0 \
        -fflags +bitexact -flags:v +bitexact -f ivf "$5"
}
# The single-layer share is sized so a viewer receives ~1.6 Mbit/s on the wire, the per-viewer rate of
# the 2024 c7i table (specs/calls-loadtest.md §2.6): each forwarded video packet adds ~90 B (descriptor,
# RTP and extensions, SRTP, UDP, IP, Ethernet) to ~1170 B of VP8, x1.08, so ~1.48 Mbit/s of VP8. A
# negative -cpu-used fixes libvpx's realtime speed, which makes the encode bit-reproducible.
vp8 "$(screen_graph 20)" 20 1490k 40 screen.ivf realtime -4
vp8 "$(screen_graph 20)" 20 2500k 40 screen_h.ivf
# At 5 fps the realtime encoder cannot get 1080p text under ~550 kbps even at its top quantizer (a 2 s
# GOP of large keyframes), so the l layer uses the better "good" mode; it undershoots, so ask for more.
vp8 "$(screen_graph 5)" 5 755k 10 screen_l.ivf good 1

# Camera: 640x360 at 30 fps, ffmpeg's moving test pattern with light temporal noise (sensor-like).
camera_graph="testsrc2=s=640x360:r=30,noise=alls=3:allf=t,format=yuv420p"
vp8 "$camera_graph" 30 500k 60 camera.ivf

# ---------------------------------------------------------------------------------------------------
# MANIFEST.toml, measured from the files with ffprobe (the Rust tests re-measure them independently).
python3 - "$HERE" "$COMMANDS" "${ALL[*]}" <<'PY'
import hashlib, json, os, subprocess, sys, tomllib
here, commands_file = sys.argv[1], sys.argv[2]
commands = dict(line.rstrip("\n").split("\t", 1) for line in open(commands_file))
# Samples not re-encoded this time keep the command recorded when they were made.
if os.path.exists(os.path.join(here, "MANIFEST.toml")):
    with open(os.path.join(here, "MANIFEST.toml"), "rb") as f:
        for old in tomllib.load(f).get("file", []):
            commands.setdefault(old["name"], old["command"])

def tool_version(cmd, prefix):
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()
    return out[0].split()[2] if prefix == "ffmpeg" else out[0]

def dpkg(pkg):
    return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True).stdout

def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()

def probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)

def q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

entries = []
for name in sys.argv[3].split():
    path = os.path.join(here, name)
    info = probe(path)
    st = info["streams"][0]
    sizes = [int(p["size"]) for p in info["packets"]]
    keys = [i for i, p in enumerate(info["packets"]) if "K" in p.get("flags", "")]
    frames = len(sizes)
    e = [f"[[file]]", f"name = {q(name)}", f"sha256 = {q(sha256(path))}"]
    if st["codec_type"] == "audio":
        fps = 50.0
        e += [f'codec = "opus"', f"resolution = \"mono 48000 Hz\"" if st["channels"] == 1 else
              f"resolution = \"{st['channels']} ch {st['sample_rate']} Hz\""]
    else:
        num, den = (int(x) for x in st["r_frame_rate"].split("/"))
        fps = num / den
        e += [f'codec = "vp8"', f"resolution = \"{st['width']}x{st['height']}\""]
    window = max(1, round(fps))
    duration = frames / fps
    mean = sum(sizes) * 8 / duration / 1000
    peak = max(sum(sizes[i:i + window]) * 8 * fps / window / 1000 for i in range(0, frames - window + 1))
    e += [f"fps = {fps:.3f}", f"frames = {frames}", f"duration_s = {duration:.3f}",
          f"mean_kbps = {mean:.2f}", f"peak_kbps = {peak:.2f}",
          f"min_frame_bytes = {min(sizes)}", f"max_frame_bytes = {max(sizes)}"]
    if st["codec_type"] == "video":
        gaps = [b - a for a, b in zip(keys, keys[1:])] + [frames - keys[-1] + keys[0]]
        e += [f"keyframes = {len(keys)}", f"keyframe_interval_s = {max(gaps) / fps:.3f}"]
    else:
        e += ["keyframes = %d" % frames, "keyframe_interval_s = 0.020"]
        lv = path + ".levels"
        e += [f"levels = {q(name + '.levels')}", f"levels_sha256 = {q(sha256(lv))}"]
    e += [f"command = {q(commands[name])}"]
    entries.append("\n".join(e))

head = f"""# Pinned media samples: generated by make-media.sh (never in CI), measured with ffprobe.
# mean_kbps / peak_kbps: codec payload only (Opus packets, VP8 frames; no container, no RTP).
# peak_kbps: the highest 1 s window (round(fps) consecutive frames). keyframe_interval_s: the longest
# gap between keyframes, counting the wrap from the last keyframe round the loop to the first.
# Audio: one Opus packet per 20 ms frame; <name>.levels holds one RFC 6464 level byte per packet.
# command: the final encode step; its $WORK inputs (speech WAVs, code.txt) are made by make-media.sh.

[tools]
ffmpeg = {q(tool_version(["ffmpeg", "-version"], "ffmpeg"))}
libvpx = {q(dpkg("libvpx7"))}
libopus = {q(dpkg("libopus0"))}
espeak_ng = {q(dpkg("espeak-ng"))}
sox = {q(dpkg("sox"))}
"""
open(os.path.join(here, "MANIFEST.toml"), "w").write(head + "\n" + "\n\n".join(entries) + "\n")
PY
du -ch "$HERE"/*.ogg "$HERE"/*.ivf "$HERE"/*.levels | tail -1
