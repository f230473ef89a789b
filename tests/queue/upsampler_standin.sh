#!/bin/sh
# torchrun of the enhance test image: the upsampler script of cosmos-tui gets a stand-in
# Pixtral (appends a fixed phrase to each prompt); anything else goes to the Cosmos
# transfer stand-in. Logs like the real script: one line per prompt.
for arg in "$@"; do
    case "$arg" in
        *cosmos_tui_upsample.py) upsample=1 ;;
    esac
done
if [ -z "${upsample:-}" ]; then
    exec /bin/transfer-standin "$@"
fi
# The script imports cosmos_transfer1 (engine/profiles/upsampler.py): without the repo on
# PYTHONPATH it dies at import, as upstream's modules do.
found=""
IFS_SAVED="$IFS"; IFS=':'
for entry in ${PYTHONPATH:-}; do
    [ -d "${entry:-.}/cosmos_transfer1" ] && found=1
done
IFS="$IFS_SAVED"
if [ -z "$found" ]; then
    echo "Traceback (most recent call last):" >&2
    echo "ModuleNotFoundError: No module named 'cosmos_transfer1'" >&2
    exit 1
fi
while [ $# -gt 0 ]; do
    case "$1" in
        --input) INPUT="$2"; shift ;;
        --output) OUTPUT="$2"; shift ;;
        --offload_prompt_upsampler) echo "offloading the prompt upsampler after each prompt" ;;
    esac
    shift
done
value() { printf '%s\n' "$1" | sed -n "s/.*\"$2\": \"\([^\"]*\)\".*/\1/p"; }
mkdir -p "$(dirname "$OUTPUT")"
: > "$OUTPUT"
echo "[11-21 17:00:00|INFO|cosmos_transfer1/auxiliary/upsampler/model/upsampler.py:1:load] Loading Pixtral-12B"
while IFS= read -r line || [ -n "$line" ]; do
    name=$(value "$line" name)
    prompt=$(value "$line" prompt)
    case "$prompt" in *"[standin:skip]"*) continue ;; esac
    case "$prompt" in *"[standin:slow]"*) sleep 2 ;; esac
    printf '{"name": "%s", "prompt": "%s Enhanced: soft golden light, fine detail."}\n' "$name" "$prompt" >> "$OUTPUT"
    echo "Upsampled prompt for $name"
done < "$INPUT"
