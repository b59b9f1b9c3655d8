#!/usr/bin/env bash
# Builds the job runner image locally (no registry): a static `callsref` binary in an image
# FROM scratch whose entrypoint is `callsref runner`, tagged so that it passes the offloader's
# runner validation (offloader.md §2.2, §8.3):
#   <registry>/calls-recorder:<recorder version>  and  <registry>/calls-transcriber:<transcriber version>
#
# Usage: deploy/runner/build-image.sh [--registry R] [--recorder-version vX.Y.Z]
#                                     [--transcriber-version vX.Y.Z] [--release]
# Defaults: registry "callsbench", v0.8.13 and v0.7.2 (the versions the Calls plugin pins).
# The binary is linked statically against musl when the x86_64-unknown-linux-musl target is
# installed (`rustup target add x86_64-unknown-linux-musl`) and a musl C compiler is present (Debian's
# musl-tools: aws-lc-sys compiles C), else against glibc with crt-static.
set -euo pipefail
cd "$(dirname "$0")/../.."

registry=callsbench
recorder=v0.8.13
transcriber=v0.7.2
profile=dev
while (($#)); do
    case "$1" in
        --registry) registry=$2; shift 2 ;;
        --recorder-version) recorder=$2; shift 2 ;;
        --transcriber-version) transcriber=$2; shift 2 ;;
        --release) profile=release; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl &&
    command -v x86_64-linux-musl-gcc >/dev/null 2>&1; then
    target=x86_64-unknown-linux-musl
    flags=""
else
    target=x86_64-unknown-linux-gnu
    flags="-C target-feature=+crt-static"
fi
outdir=debug
[[ $profile == release ]] && outdir=release

echo "building static callsref for $target ($profile)" >&2
# No debug info: the binary only has to run in the container, and a smaller one builds the image faster.
CARGO_PROFILE_DEV_DEBUG=0 RUSTFLAGS="$flags" \
    cargo build --quiet -p callsref --bin callsref --target "$target" --profile "$profile"
bin="target/$target/$outdir/callsref"
if ! ldd "$bin" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "build-image.sh: $bin is not static" >&2
    exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/callsref"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY callsref /callsref
ENTRYPOINT ["/callsref", "runner"]
DOCKERFILE
docker build --quiet \
    -t "$registry/calls-recorder:$recorder" \
    -t "$registry/calls-transcriber:$transcriber" \
    "$ctx" >/dev/null
echo "$registry/calls-recorder:$recorder"
echo "$registry/calls-transcriber:$transcriber"
