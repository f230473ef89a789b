#!/bin/sh
# cosmos_standin.sh: a stand-in for Cosmos-Transfer1's transfer.py (POSIX sh; runs
# under busybox sh with no python, and under /bin/sh on a workstation).
#
# INVOCATION: exactly the argv that cosmos_tui.engine.profiles.transfer1.build_argv
# makes, either with the script itself in front or through a `torchrun` on PATH that
# execs it (symlink or copy this file as /usr/local/bin/torchrun):
#     cosmos_standin.sh torchrun --nproc_per_node=1 --nnodes=1 --node_rank=0 \
#         cosmos_transfer1/diffusion/inference/transfer.py --checkpoint_dir checkpoints \
#         --video_save_folder OUT --controlnet_specs SPEC.json --num_gpus 1 ... \
#         [--batch_input_path BATCH.jsonl] --offload_text_encoder_model ...
#   Every unknown argument is ignored. Relative paths are relative to the working
#   directory (/workspace in the container), as with the real model.
#
# WHAT IT DOES: prints the Transfer1 log phases of COSMOS.md section 5 (loguru lines on
# stdout, tqdm bars with \r redraws on stderr) and writes, into --video_save_folder,
#     output.mp4   a byte copy of the spec's input_video_path (a real, playable video)
#     output.txt   the prompt text
#     <hint>_input_control.mp4   for each hint in the spec without input_control
# With --batch_input_path, video_<idx>/output.mp4 (copied from the line's visual_input)
# and video_<idx>/prompt.txt per JSONL line, chunk by chunk of --batch_size lines; a
# blocked prompt ends the process (batch size 1) or shifts its chunk's later outputs
# (see "batch mode" below).
#
# ENVIRONMENT:
#   COSMOS_STANDIN_SPEED     multiplies every delay (default 1: about 20 s a run;
#                            0.01 in tests; 0 for no delays).
#   COSMOS_STANDIN_SCENARIO  ok (default), oom, host_oom, missing_ckpt, guardrail,
#                            spec_error, hang, flood, crash.
#                            A marker "[standin:<scenario>]" in the spec's prompt (or
#                            the first batch line) selects a scenario too; the
#                            environment wins. In a batch, "[standin:guardrail]" blocks
#                            only the line that carries it.
#   COSMOS_STANDIN_FLOOD_LINES  lines printed by the flood scenario (default 100000).
#   COSMOS_STANDIN_IGNORE_TERM  1: ignore SIGTERM (tests the kill after a grace period).
#   COSMOS_STANDIN_CLIPS     number of 121-frame clips to "generate" (default 1).
#
# SCENARIOS AND THEIR SIGNATURES (exit status 1 unless said otherwise):
#   ok            every phase, outputs written, exit 0.
#   oom           "[rank0]: torch.OutOfMemoryError: CUDA out of memory." during sampling,
#                 then torchrun's ChildFailedError footer.
#   host_oom      torchrun footer with "exitcode  : -9" and "Signal 9 (SIGKILL)".
#   missing_ckpt  "FileNotFoundError: [Errno 2] No such file or directory:
#                 'checkpoints/nvidia/...'" while loading the base model.
#   guardrail     "GUARDRAIL BLOCKED: ...", "All prompts failed safety checks", then
#                 "TypeError: cannot unpack non-iterable NoneType object".
#   spec_error    "ValueError: Must have 'input_video' specified if sigma_max < 80".
#   hang          stops logging inside diffusion sampling and never ends (SIGTERM ends
#                 it with status 143 unless COSMOS_STANDIN_IGNORE_TERM=1).
#   flood         prints COSMOS_STANDIN_FLOOD_LINES lines, then finishes like ok.
#   crash         "RuntimeError: ..." with no known signature (an unknown failure).

set -u

SPEED="${COSMOS_STANDIN_SPEED:-1}"
OUT_DIR=""
SPEC=""
BATCH=""
NUM_GPUS=1
SCRIPT_LINE=0

# --- arguments ------------------------------------------------------------------------
while [ $# -gt 0 ]; do
    case "$1" in
        --video_save_folder) OUT_DIR="${2:-}"; shift ;;
        --controlnet_specs) SPEC="${2:-}"; shift ;;
        --batch_input_path) BATCH="${2:-}"; shift ;;
        --num_gpus) NUM_GPUS="${2:-1}"; shift ;;
        --video_save_folder=*) OUT_DIR="${1#*=}" ;;
        --controlnet_specs=*) SPEC="${1#*=}" ;;
        --batch_input_path=*) BATCH="${1#*=}" ;;
        --batch_size) BATCH_SIZE="${2:-1}"; shift ;;
        --batch_size=*) BATCH_SIZE="${1#*=}" ;;
        --checkpoint_dir|--num_steps|--guidance|--seed|--fps|--sigma_max|--blur_strength|\
        --canny_threshold|--negative_prompt|--batch_size|--prompt) shift ;;
    esac
    shift
done

# --- helpers --------------------------------------------------------------------------
now() { date '+%m-%d %H:%M:%S'; }

# log LEVEL FUNCTION MESSAGE: one loguru-format line on stdout.
log() {
    SCRIPT_LINE=$((SCRIPT_LINE + 7))
    printf '[%s|%s|cosmos_transfer1/diffusion/inference/%s:%d:%s] %s\n' \
        "$(now)" "$1" "transfer.py" "$SCRIPT_LINE" "$2" "$3"
}

# pause SECONDS: sleep SECONDS * SPEED in the background so that traps run at once.
pause() {
    _delay=$(awk -v a="$1" -v b="$SPEED" 'BEGIN { printf "%.3f", a * b }')
    case "$_delay" in 0|0.0|0.00|0.000) return 0 ;; esac
    sleep "$_delay" &
    wait $! 2>/dev/null || true
}

# bar TOTAL: an unlabelled tqdm bar on stderr counting 0..TOTAL with \r redraws.
bar_start() { printf '\r  0%%|          | 0/%d [00:00<?, ?it/s]' "$1" >&2; }
bar_step() {
    _pct=$(( $1 * 100 / $2 ))
    printf '\r%3d%%|##########| %d/%d [00:%02d<00:00,  1.00s/it]' "$_pct" "$1" "$2" "$1" >&2
    [ "$1" -eq "$2" ] && printf '\n' >&2
    return 0
}

# json_value FILE KEY: the first string value of "KEY" in a one-object JSON file.
json_value() {
    tr -d '\n' < "$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
}

# line_value LINE KEY: the string value of "KEY" in one JSON line.
line_value() {
    printf '%s\n' "$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
}

torchrun_footer() {
    # $1: exitcode, $2: extra error line
    {
        echo "E1121 $(date '+%H:%M:%S') 1 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: $1) local_rank: 0 (pid: 42) of binary: /usr/bin/python"
        echo "Traceback (most recent call last):"
        echo "  File \"/usr/local/bin/torchrun\", line 8, in <module>"
        echo "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: "
        echo "============================================================"
        echo "cosmos_transfer1/diffusion/inference/transfer.py FAILED"
        echo "------------------------------------------------------------"
        echo "Root Cause (first observed failure):"
        echo "[0]:"
        echo "  time      : $(date '+%Y-%m-%d_%H:%M:%S')"
        echo "  rank      : 0 (local_rank: 0)"
        echo "  exitcode  : $1 (pid: 42)"
        [ -n "$2" ] && echo "  error_file: <N/A>" && echo "  traceback : $2"
        echo "============================================================"
    } >&2
}

python_traceback() {
    # $1: the exception line; printed with torchrun's rank prefix
    {
        echo "[rank0]: Traceback (most recent call last):"
        echo "[rank0]:   File \"/workspace/cosmos_transfer1/diffusion/inference/transfer.py\", line 411, in <module>"
        echo "[rank0]:     demo(args)"
        echo "[rank0]: $1"
    } >&2
}

fail_with() {
    python_traceback "$1"
    torchrun_footer 1 "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html"
    exit 1
}

if [ "${COSMOS_STANDIN_IGNORE_TERM:-0}" = "1" ]; then
    trap '' TERM
else
    trap 'echo "W1121 torch/distributed/elastic/agent/server/api.py:704] Received Signals.SIGTERM death signal, shutting down workers" >&2; exit 143' TERM
fi
trap 'exit 130' INT

# --- inputs ---------------------------------------------------------------------------
if [ -z "$OUT_DIR" ] || [ -z "$SPEC" ]; then
    echo "usage: transfer.py --video_save_folder DIR --controlnet_specs SPEC.json" >&2
    exit 2
fi
if [ ! -f "$SPEC" ]; then
    fail_with "FileNotFoundError: [Errno 2] No such file or directory: '$SPEC'"
fi
PROMPT=$(json_value "$SPEC" prompt)
INPUT_VIDEO=$(json_value "$SPEC" input_video_path)
SCENARIO="${COSMOS_STANDIN_SCENARIO:-}"
if [ -z "$SCENARIO" ]; then
    FIRST_PROMPT="$PROMPT"
    if [ -n "$BATCH" ] && [ -f "$BATCH" ]; then
        FIRST_PROMPT="$FIRST_PROMPT $(head -n 1 "$BATCH")"
    fi
    SCENARIO=$(printf '%s\n' "$FIRST_PROMPT" | sed -n 's/.*\[standin:\([a-z_]*\)\].*/\1/p' | head -n 1)
    # In a batch the guardrail marker blocks only its own line (handled per line).
    if [ -n "$BATCH" ] && [ "$SCENARIO" = "guardrail" ]; then
        SCENARIO=""
    fi
fi
SCENARIO="${SCENARIO:-ok}"
HINTS=""
for hint in vis edge depth seg keypoint upscale hdmap lidar; do
    if tr -d '\n' < "$SPEC" | grep -q "\"$hint\"[[:space:]]*:[[:space:]]*{"; then
        HINTS="$HINTS $hint"
    fi
done
CLIPS="${COSMOS_STANDIN_CLIPS:-1}"

# --- phase 1: arguments ---------------------------------------------------------------
rank=0
while [ "$rank" -lt "$NUM_GPUS" ]; do
    log CRITICAL "init_distributed" "Initialized distributed training with local rank $rank with timeout 1800"
    rank=$((rank + 1))
done
log INFO "demo" "control_inputs: {$(echo "$HINTS" | sed 's/^ //; s/ /, /g')}"
log INFO "demo" "final args: {'video_save_folder': '$OUT_DIR', 'controlnet_specs': '$SPEC', 'num_gpus': $NUM_GPUS}"
log INFO "demo" "Using random seed 1."
pause 0.5

if [ "$SCENARIO" = "spec_error" ]; then
    fail_with "ValueError: Must have 'input_video' specified if sigma_max < 80"
fi

# --- phase 2: models ------------------------------------------------------------------
log INFO "__init__" "Start creating base model"
pause 2
if [ "$SCENARIO" = "missing_ckpt" ]; then
    fail_with "FileNotFoundError: [Errno 2] No such file or directory: 'checkpoints/nvidia/Cosmos-Transfer1-7B/base_model.pt'"
fi
log INFO "load_model" "Done loading the base model checkpoint."
for hint in $HINTS; do
    log INFO "load_model" "Loading ctrl model from ckpt_path: checkpoints/nvidia/Cosmos-Transfer1-7B/${hint}_control.pt"
done
pause 2

# --- batch mode (--batch_input_path) --------------------------------------------------
# A double of transfer.py's batch loop (nvidia-cosmos/cosmos-transfer1 at 5005e82; see
# docs/cosmos.md, "Transfer1 batch outputs and blocked prompts"):
#   transfer.py:284-285    "Reading batch inputs from path", every line read first (a
#                          blank line is a JSONDecodeError before anything runs)
#   transfer.py:290-293    batch size from --batch_size (default 1, transfer.py:131);
#                          forced to 1 when the spec has "upscale"
#   transfer.py:295-333    per chunk of batch_size lines: video_<index>/ made for every
#                          line, then the preprocessor writes <hint>_input_control_0.mp4
#                          there for hints without input_control (preprocessors.py:142)
#   world_generation_pipeline.py:728-739  guardrail on every prompt of the chunk:
#                          "GUARDRAIL BLOCKED: ..." (presets.py:55), "Input text prompt
#                          <n> is not safe"; a blocked prompt is left out of the chunk;
#                          none left: "All prompts failed safety checks", generate
#                          returns None and transfer.py:377 logs "Guardrail blocked
#                          generation for entire batch.", then dies at transfer.py:387
#                          with "TypeError: cannot unpack non-iterable NoneType object"
#                          (so with batch size 1 the first blocked line ends the process)
#   transfer.py:390-417    the chunk's outputs, numbered from the chunk's start in the
#                          order of the prompts that passed: video_<start+i>/output.mp4
#                          and video_<start+i>/prompt.txt (the prompt, no newline), so a
#                          blocked line shifts the later outputs of its chunk
# A line's "[standin:guardrail]" blocks that line; "[standin:oom]" or "[standin:crash]"
# makes its chunk fail during sampling.

# json_string KEY: the decoded string value of "KEY" in the JSON line on stdin.
json_string() {
    LC_ALL=C awk -v key="$1" '
    function hexval(h,   i, v) {
        v = 0
        for (i = 1; i <= length(h); i++)
            v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1
        return v
    }
    function utf8(c) {
        if (c < 128) return sprintf("%c", c)
        if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
        return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64)
    }
    {
        if (!match($0, "\"" key "\"[ \t]*:[ \t]*\"")) exit 1
        s = substr($0, RSTART + RLENGTH); out = ""
        while (length(s) > 0) {
            c = substr(s, 1, 1)
            if (c == "\"") { printf "%s", out; exit 0 }
            if (c == "\\") {
                e = substr(s, 2, 1); s = substr(s, 3)
                if (e == "n") out = out "\n"
                else if (e == "t") out = out "\t"
                else if (e == "r") out = out "\r"
                else if (e == "u") { out = out utf8(hexval(substr(s, 1, 4))); s = substr(s, 5) }
                else out = out e
                continue
            }
            out = out c; s = substr(s, 2)
        }
        exit 1
    }'
}

# batch_line INDEX: the 0-based JSONL line INDEX.
batch_line() { sed -n "$(($1 + 1))p" "$BATCH"; }

# line_marker INDEX: the "[standin:<name>]" marker of line INDEX (empty when none).
line_marker() {
    batch_line "$1" | sed -n 's/.*\[standin:\([a-z_]*\)\].*/\1/p' | head -n 1
}

# line_video INDEX: the visual_input of line INDEX (the spec's video when absent).
line_video() {
    _video=$(batch_line "$1" | json_string visual_input)
    printf '%s' "${_video:-$INPUT_VIDEO}"
}

# batch_unpack_crash: transfer.py dying at line 387 after generate returned None.
batch_unpack_crash() {
    {
        echo "[rank0]: Traceback (most recent call last):"
        echo "[rank0]:   File \"/workspace/cosmos_transfer1/diffusion/inference/transfer.py\", line 433, in <module>"
        echo "[rank0]:     demo(args, control_inputs)"
        echo "[rank0]:   File \"/workspace/cosmos_transfer1/diffusion/inference/transfer.py\", line 387, in demo"
        echo "[rank0]:     videos, final_prompts = batch_outputs"
        echo "[rank0]: TypeError: cannot unpack non-iterable NoneType object"
    } >&2
    torchrun_footer 1 "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html"
    exit 1
}

# batch_chunk START END: one chunk of lines START..END-1, as transfer.py:295-421.
batch_chunk() {
    _start=$1; _end=$2; _i=$_start; _fail=""
    [ "$_start" -eq 0 ] && _fail="$SCENARIO"
    while [ "$_i" -lt "$_end" ]; do
        _dir="$OUT_DIR/video_$_i"
        mkdir -p "$_dir" || exit 1
        log INFO "demo" "running preprocessor"
        _video=$(line_video "$_i")
        [ -f "$_video" ] || fail_with "FileNotFoundError: [Errno 2] No such file or directory: '$_video'"
        for hint in $AUTO_HINTS; do
            log INFO "gen_input_control" "no input_control provided for $hint. generating input control video"
            cp "$_video" "$_dir/${hint}_input_control_0.mp4" || exit 1
        done
        case "$(line_marker "$_i")" in oom|crash) _fail=$(line_marker "$_i") ;; esac
        _i=$((_i + 1))
    done
    log INFO "generate" "Running batch generation with batch_size=$((_end - _start))"
    log INFO "generate" "Running guardrail checks on all prompts"
    pause 0.5
    _safe=""; _n=1; _i=$_start
    while [ "$_i" -lt "$_end" ]; do
        if [ "$(line_marker "$_i")" = "guardrail" ] || [ "$SCENARIO" = "guardrail" ]; then
            log CRITICAL "run_text_guardrail" "GUARDRAIL BLOCKED: Blocklist: Prompt blocked by the text guardrail."
            log CRITICAL "generate" "Input text prompt $_n is not safe"
        else
            _safe="$_safe $_i"
        fi
        _n=$((_n + 1)); _i=$((_i + 1))
    done
    if [ -z "$_safe" ]; then
        log CRITICAL "generate" "All prompts failed safety checks"
        log CRITICAL "demo" "Guardrail blocked generation for entire batch."
        batch_unpack_crash
    fi
    log INFO "generate" "Running text embedding on all prompts"
    log INFO "generate" "Starting T5 compute"
    pause 1
    log INFO "generate" "Completed T5 compute"
    log INFO "generate" "Finish text embedding on prompt"
    log INFO "generate" "Run generation"
    log INFO "_run_model" "Starting data augmentation"
    log INFO "_run_model" "Completed data augmentation"
    bar_start "$CLIPS"
    _clip=0
    while [ "$_clip" -lt "$CLIPS" ]; do
        log INFO "_run_model" "Starting latent encoding"
        log INFO "_run_model" "Completed latent encoding"
        log INFO "_run_model" "Starting diffusion sampling"
        [ "$_fail" = "hang" ] && while :; do pause 3600; done
        pause 8
        case "$_fail" in
            oom)
                python_traceback "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.12 GiB is free."
                torchrun_footer 1 ""
                exit 1 ;;
            host_oom) torchrun_footer "-9" "Signal 9 (SIGKILL) received by PID 42"; exit 1 ;;
            crash) fail_with "RuntimeError: the stand-in crashed on purpose" ;;
        esac
        log INFO "_run_model" "Completed diffusion sampling"
        log INFO "_run_model" "Starting VAE decode"
        pause 1
        log INFO "_run_model" "Completed VAE decode"
        _clip=$((_clip + 1))
        bar_step "$_clip" "$CLIPS"
    done
    log INFO "generate" "Finish generation"
    log INFO "generate" "Run guardrail on generated videos"
    pause 0.5
    _k=$_start
    for _i in $_safe; do
        _dir="$OUT_DIR/video_$_k"
        mkdir -p "$_dir" || exit 1
        cp "$(line_video "$_i")" "$_dir/output.mp4" || exit 1
        log INFO "demo" "Saved video to $_dir/output.mp4"
        batch_line "$_i" | json_string prompt > "$_dir/prompt.txt" || exit 1
        log INFO "demo" "Saved prompt to $_dir/prompt.txt"
        _k=$((_k + 1))
    done
}

run_batch() {
    log INFO "demo" "Reading batch inputs from path: $BATCH"
    [ -f "$BATCH" ] || fail_with "FileNotFoundError: [Errno 2] No such file or directory: '$BATCH'"
    if grep -q '^[[:space:]]*$' "$BATCH"; then
        fail_with "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    fi
    AUTO_HINTS=""
    for hint in $HINTS; do
        block=$(tr -d '\n' < "$SPEC" | sed -n "s/.*\"$hint\"[[:space:]]*:[[:space:]]*{\\([^}]*\\)}.*/\\1/p")
        case "$block" in *input_control*) ;; *) AUTO_HINTS="$AUTO_HINTS $hint" ;; esac
    done
    _size="${BATCH_SIZE:-1}"
    case " $HINTS " in
        *" upscale "*)
            if [ "$_size" -gt 1 ]; then
                _size=1
                log INFO "demo" "Setting batch_size=1 as upscale does not support batch generation"
            fi ;;
    esac
    [ "$_size" -ge 1 ] || _size=1
    mkdir -p "$OUT_DIR" || exit 1
    _total=$(awk 'END { print NR }' "$BATCH")
    _from=0
    while [ "$_from" -lt "$_total" ]; do
        _to=$((_from + _size))
        [ "$_to" -gt "$_total" ] && _to=$_total
        batch_chunk "$_from" "$_to"
        _from=$_to
    done
    exit 0
}

if [ -n "$BATCH" ]; then
    run_batch
fi

# --- phase 3: preprocessing -----------------------------------------------------------
log INFO "demo" "running preprocessor"
AUTO_HINTS=""
for hint in $HINTS; do
    block=$(tr -d '\n' < "$SPEC" | sed -n "s/.*\"$hint\"[[:space:]]*:[[:space:]]*{\\([^}]*\\)}.*/\\1/p")
    case "$block" in
        *input_control*) ;;
        *)
            AUTO_HINTS="$AUTO_HINTS $hint"
            log INFO "preprocess" "no input_control provided for $hint. generating input control video with $hint model"
            pause 1
            ;;
    esac
done

# --- phase 4: guardrail on prompts ----------------------------------------------------
log INFO "demo" "Running guardrail checks on all prompts"
pause 0.5
if [ "$SCENARIO" = "guardrail" ]; then
    log CRITICAL "run_guardrail" "GUARDRAIL BLOCKED: Blocklist: Prompt blocked by the text guardrail."
    log CRITICAL "demo" "All prompts failed safety checks"
    fail_with "TypeError: cannot unpack non-iterable NoneType object"
fi

# --- phase 5: text embedding ----------------------------------------------------------
log INFO "demo" "Running text embedding on all prompts"
pause 1
log INFO "demo" "Completed T5 compute"

# --- phase 6: generation setup --------------------------------------------------------
log INFO "demo" "Run generation"
pause 0.5
log INFO "generate" "Completed data augmentation"

if [ "$SCENARIO" = "flood" ]; then
    awk -v n="${COSMOS_STANDIN_FLOOD_LINES:-100000}" -v t="$(now)" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "[%s|DEBUG|cosmos_transfer1/diffusion/model.py:%d:flood] flood line %d of %d\n", t, i % 1000, i, n
    }'
fi

# --- phase 7: per clip ----------------------------------------------------------------
bar_start "$CLIPS"
clip=0
while [ "$clip" -lt "$CLIPS" ]; do
    log INFO "generate" "Starting latent encoding"
    pause 0.5
    log INFO "generate" "Starting diffusion sampling"
    if [ "$SCENARIO" = "hang" ]; then
        while :; do pause 3600; done
    fi
    pause 8
    if [ "$SCENARIO" = "oom" ]; then
        python_traceback "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.12 GiB is free."
        torchrun_footer 1 ""
        exit 1
    fi
    if [ "$SCENARIO" = "host_oom" ]; then
        torchrun_footer "-9" "Signal 9 (SIGKILL) received by PID 42"
        exit 1
    fi
    if [ "$SCENARIO" = "crash" ]; then
        fail_with "RuntimeError: the stand-in crashed on purpose"
    fi
    log INFO "generate" "Completed diffusion sampling"
    log INFO "generate" "Starting VAE decode"
    pause 1
    log INFO "generate" "Completed VAE decode"
    clip=$((clip + 1))
    bar_step "$clip" "$CLIPS"
done

# --- phase 8: outputs -----------------------------------------------------------------
log INFO "demo" "Finish generation"
log INFO "demo" "Run guardrail on generated videos"
pause 0.5

write_sample() {
    # $1: folder, $2: input video, $3: prompt text
    mkdir -p "$1" || exit 1
    if [ -n "$2" ] && [ -f "$2" ]; then
        cp "$2" "$1/output.mp4" || exit 1
    else
        fail_with "FileNotFoundError: [Errno 2] No such file or directory: '$2'"
    fi
    printf '%s\n' "$3" > "$1/output.txt" || exit 1
    for hint in $AUTO_HINTS; do
        cp "$2" "$1/${hint}_input_control.mp4" || exit 1
    done
    log INFO "demo" "Saved video to $1/output.mp4"
    log INFO "demo" "Saved prompt to $1/output.txt"
}

write_sample "$OUT_DIR" "$INPUT_VIDEO" "$PROMPT"
exit 0
