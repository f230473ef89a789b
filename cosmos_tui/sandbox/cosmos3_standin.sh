#!/bin/sh
# cosmos3_standin.sh: a double of Cosmos 3's inference entry point (POSIX sh + awk; runs
# under busybox with no python). It reads its sample file with cosmos3_json.awk, which
# must sit next to it.
#
# UPSTREAM: NVIDIA/cosmos-framework at commit 5eee9ed5 (2026-08-21); docs/cosmos.md,
# "Cosmos 3 contract", lists the lines each behaviour below mirrors.
#
# INVOCATION: what a container runs, with this file installed as `python` and `torchrun`
# (or with the launcher name as the first argument when run as cosmos3_standin.sh):
#     python -m cosmos_framework.scripts.inference -i SAMPLE.json -o OUT \
#         --checkpoint-path Cosmos3-Nano --parallelism-preset=latency [--seed N] ...
#     torchrun --nproc-per-node=N -m cosmos_framework.scripts.inference ...
#
# WHAT UPSTREAM DOES, AND THIS DOUBLE WITH IT:
#   install    docker/entrypoint.sh:10 runs `uv pip install --no-deps -e .` in /workspace
#              at every start (|| true); without a checkout there (no pyproject.toml) the
#              install fails and `python -m` then dies with "No module named
#              'cosmos_framework'" (exit 1).
#   flags      tyro, kebab-case (script.py:21-31, 79-87; common.py:780-853, 895-996):
#              an unknown flag or a bad choice prints tyro's error and exits 2 (tyro's box
#              is drawn in Unicode; it is ASCII here).
#   setup      --checkpoint-path: a registered name or an existing folder
#              (common.py:657-683); cp_size*cfgp_size must divide WORLD_SIZE under the
#              latency preset (args.py:1331-1339, 1376-1392).
#   download   weights come from Hugging Face on first use; the command is logged first
#              (checkpoint_db.py:171); with no token (HF_TOKEN, the HF_TOKEN_PATH file or
#              $HF_HOME/token) or a gated repo (scenario "gated") hf fails with 401
#              GatedRepoError and the run dies with CalledProcessError (checkpoint_db.py:
#              175-181), exit 1. A filled cache ($HF_HOME/hub/models--nvidia--<name>) is
#              reused without a token.
#   files      several -i files: one model for all, their samples in path order, every
#              one validated before any runs (script.py:21-28, common.py:1053-1098);
#              each sample is handled alone with --keep-going (common/inference.py:262-266).
#   samples    extra="forbid" and the field types of OmniSampleOverrides (args.py,
#              common.py:288-300): "Error validating parameters from '<file>' at sample 0"
#              with pydantic's error (common.py:1065-1070), exit 1; vision_path and
#              control_path must be files (common.py:272-279); transfer hints without a
#              control need vision_path (args.py:897-900).
#   outputs    <out>/<name>/sample_args.json, vision.mp4 (vision.jpg for one frame),
#              control_<hint>.mp4 for transfer, sample_outputs.json (omni.py:1779-1889);
#              the log lines of docs/cosmos.md; the `Sampling` bar on rank 0 only.
#   reasoner   model_mode=reasoner (inference.py:1899-1986): reasoner_text.txt, no bar.
#   markers    a prompt with [standin:guardrail] is blocked by the prompt guardrail
#              (reasoner, and text2video/image2video as the video is saved: inference.py:
#              1758-1762; transfer outputs are not guardrailed); [standin:oom] runs out of
#              GPU memory while sampling that sample; [standin:badinput] has an input
#              that cannot be read when its data is prepared (before its sample_args.json).
#   scenarios  COSMOS_STANDIN_SCENARIO: ok, gated, oom (CUDA OOM while sampling), nccl
#              (the NCCL segfault of infer.md:312-320), slow (the reasoner takes 3 s),
#              empty and echo (a reasoner with nothing new to say), cutlass (a GPU whose
#              kernels fail to start: exit 0, cosmos-framework#42). COSMOS_STANDIN_SPEED
#              scales delays.
set -u

SPEED=${COSMOS_STANDIN_SPEED:-1}
SCENARIO=${COSMOS_STANDIN_SCENARIO:-ok}
HERE=$(dirname "$0")
AWK_JSON="$HERE/cosmos3_json.awk"
ENTRY=cosmos_framework.scripts.inference

now() { date '+%m-%d %H:%M:%S'; }
# log LEVEL WHERE MESSAGE: a loguru line (utils/log.py:78-99), rank 0 only.
log() { printf '[%s|%s|%s] %s\n' "$(now)" "$1" "$2" "$3"; }
pause() {
    _delay=$(awk -v a="$1" -v b="$SPEED" 'BEGIN { printf "%.3f", a * b }')
    case "$_delay" in 0|0.0|0.00|0.000) return 0 ;; esac
    sleep "$_delay"
}
# die TYPE MESSAGE: an uncaught exception's traceback (exit 1, or torchrun's failure).
die() {
    {
        echo "Traceback (most recent call last):"
        echo "  File \"/workspace/cosmos_framework/scripts/inference.py\", line 92, in <module>"
        echo "    main()"
        echo "$1: $2"
    } >&2
    if [ "$LAUNCHER" = torchrun ]; then
        echo "E1205 $(date '+%H:%M:%S') 1 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: 1) local_rank: 0 (pid: 42) of binary: /workspace/.venv/bin/python" >&2
        echo "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: " >&2
    fi
    exit 1
}
tyro_error() {
    {
        echo "+- Parsing error ----------------------------------------------------+"
        echo "| $1"
        echo "| For full helptext, run python -m $ENTRY --help"
        echo "+--------------------------------------------------------------------+"
    } >&2
    exit 2
}

# --- launcher ----------------------------------------------------------------------------
LAUNCHER=$(basename "$0")
if [ "$LAUNCHER" = cosmos3_standin.sh ]; then LAUNCHER=$(basename "$1"); shift; fi
NPROC=1
if [ "$LAUNCHER" = torchrun ]; then
    while [ $# -gt 0 ]; do
        case "$1" in
            --nproc-per-node=*|--nproc_per_node=*) NPROC=${1#*=}; shift ;;
            --nproc-per-node|--nproc_per_node) NPROC=$2; shift 2 ;;
            --*) shift ;;
            *) break ;;
        esac
    done
fi
if [ "${1:-}" != "-m" ] || [ $# -lt 2 ]; then
    echo "usage: $LAUNCHER -m $ENTRY -i FILE -o DIR" >&2
    exit 2
fi
MODULE=$2
shift 2

# --- the image's entrypoint (docker/entrypoint.sh:10) -------------------------------------
if [ -f "$PWD/pyproject.toml" ]; then
    echo "Resolved 1 package in 4ms" >&2
    echo "Prepared 1 package in 1.21s" >&2
    echo "Installed 1 package in 2ms" >&2
    echo " + cosmos-framework==1.0.0 (from file://$PWD)" >&2
    INSTALLED=1
else
    echo "error: $PWD does not appear to be a Python project, as neither \`pyproject.toml\` nor \`setup.py\` are present in the directory" >&2
    INSTALLED=0
fi
if [ "$MODULE" != "$ENTRY" ] || [ "$INSTALLED" = 0 ]; then
    _pkg=${MODULE%%.*}
    echo "/workspace/.venv/bin/python: Error while finding module specification for '$MODULE' (ModuleNotFoundError: No module named '$_pkg')" >&2
    exit 1
fi

# --- flags (tyro) -------------------------------------------------------------------------
INPUTS=""; OUTPUT=""; CHECKPOINT=Cosmos3-Nano; PRESET=latency; DP_SHARD=0; CP=0; CFGP=0
GUARDRAILS=1; SEED=""; KEEP_GOING=0
while [ $# -gt 0 ]; do
    _flag=$1; _value=""; _has=0
    case "$_flag" in --*=*) _value=${_flag#*=}; _flag=${_flag%%=*}; _has=1 ;; esac
    take() {
        if [ "$_has" = 1 ]; then return 0; fi
        [ $# -ge 2 ] || tyro_error "Missing value for $_flag"
        _value=$2; _shift=2
    }
    _shift=1
    case "$_flag" in
        -i|--input-files)
            if [ "$_has" = 1 ]; then INPUTS="$_value"; else
                shift
                while [ $# -gt 0 ]; do
                    case "$1" in -*) break ;; esac
                    INPUTS="$INPUTS $1"; shift
                done
                _shift=0
            fi ;;
        -o|--output-dir) take "$@"; OUTPUT=$_value ;;
        --checkpoint-path) take "$@"; CHECKPOINT=$_value ;;
        --parallelism-preset)
            take "$@"; PRESET=$_value
            case "$PRESET" in latency|throughput) ;; *)
                tyro_error "Argument --parallelism-preset: invalid choice: '$PRESET' (choose from 'throughput', 'latency')" ;;
            esac ;;
        --dp-shard-size) take "$@"; DP_SHARD=$_value ;;
        --cp-size) take "$@"; CP=$_value ;;
        --cfgp-size) take "$@"; CFGP=$_value ;;
        --dp-replicate-size|--max-num-seqs|--warmup|--device-memory-utilization) take "$@" ;;
        --seed) take "$@"; SEED=$_value ;;
        --guardrails) GUARDRAILS=1 ;;
        --no-guardrails) GUARDRAILS=0 ;;
        --keep-going) KEEP_GOING=1 ;;
        --no-keep-going) KEEP_GOING=0 ;;
        --offload-guardrail-models|--no-offload-guardrail-models) ;;
        --skip-invalid-samples|--no-skip-invalid-samples|--diffusion-cache|--no-diffusion-cache) ;;
        *) tyro_error "Unrecognized options: $_flag" ;;
    esac
    [ "$_shift" -gt 0 ] && shift "$_shift"
done
[ -n "$INPUTS" ] || tyro_error "Required options were not provided: --input-files"
[ -n "$OUTPUT" ] || die ValueError "'output_dir' is required"

# --- setup (checkpoint, parallelism) ------------------------------------------------------
case "$CHECKPOINT" in
    Cosmos3-Edge|Cosmos3-Nano|Cosmos3-Super|Cosmos3-Super-*) REPO="nvidia/$CHECKPOINT" ;;
    *)
        [ -d "$CHECKPOINT" ] || die ValueError "Checkpoint directory does not exist: $CHECKPOINT"
        REPO="" ;;
esac
if [ "$NPROC" -gt 1 ]; then
    if [ "$CFGP" = 0 ]; then
        if [ "$PRESET" = latency ]; then CFGP=2; else CFGP=1; fi
    fi
    if [ "$CP" = 0 ]; then
        if [ "$PRESET" = latency ]; then CP=$((NPROC / CFGP)); else CP=1; fi
    fi
    if [ $((NPROC % (CP * CFGP))) -ne 0 ]; then
        die ValueError "cp_size($CP) * cfgp_size($CFGP) must divide WORLD_SIZE($NPROC)"
    fi
fi

# --- downloads (checkpoint_db.py:142-183) -------------------------------------------------
HF_HOME=${HF_HOME:-/root/.cache/huggingface}
has_token() {
    [ -n "${HF_TOKEN:-}" ] && return 0
    [ -n "${HF_TOKEN_PATH:-}" ] && [ -s "$HF_TOKEN_PATH" ] && return 0
    [ -s "$HF_HOME/token" ]
}
download() {
    _cache="$HF_HOME/hub/models--$(echo "$1" | sed 's|/|--|g')"
    [ -f "$_cache/snapshots/main/config.json" ] && return 0
    log INFO "cosmos_framework/utils/checkpoint_db.py:171:_hf_download" \
        "uv run --isolated --project /workspace/cosmos_framework/utils/hf_cli --locked --no-default-groups hf download --format=json $1 --repo-type model --revision main"
    if ! has_token || [ "$SCENARIO" = gated ]; then
        {
            echo "huggingface_hub.errors.GatedRepoError: 401 Client Error. (Request ID: Root=1-standin)"
            echo ""
            echo "Cannot access gated repo for url https://huggingface.co/api/models/$1/revision/main."
            echo "Access to model $1 is restricted. You must have access to it and be authenticated to access it. Please log in."
        } >&2
        die subprocess.CalledProcessError \
            "Command '['uv', 'run', '--isolated', 'hf', 'download', '--format=json', '$1', '--repo-type', 'model', '--revision', 'main']' returned non-zero exit status 1."
    fi
    printf '\rFetching 9 files:   0%%|          | 0/9 [00:00<?, ?it/s]' >&2
    pause 0.5
    printf '\rFetching 9 files: 100%%|##########| 9/9 [00:02<00:00,  3.91it/s]\n' >&2
    mkdir -p "$_cache/snapshots/main" && echo '{}' > "$_cache/snapshots/main/config.json"
}
[ -n "$REPO" ] && download "$REPO"
[ "$GUARDRAILS" = 1 ] && download nvidia/Cosmos-Guardrail1

# --- the sample files ---------------------------------------------------------------------
# One model for every -i file (script.py:21-28); the files are sorted(set(...)), so their
# samples run in path order (common.py:1090-1098).
TAB=$(printf '\t')
FILES=$(for _f in $INPUTS; do case "$_f" in /*) echo "$_f" ;; *) echo "$PWD/$_f" ;; esac; done |
    sort -u)

invalid() {  # invalid LOC MESSAGE: pydantic's error inside upstream's ValueError
    die ValueError "Error validating parameters from '$SAMPLE' at sample 0
Parameters: $(tr -d '\n' < "$SAMPLE")
1 validation error for OmniSampleOverrides
$1
  $2"
}
TOP="name model extra seed num_outputs tensors_file pickle_file num_steps guidance guidance_interval normalize_cfg shift sigma_max prompt_path prompt negative_prompt duration_template resolution_template negative_metadata_mode inverse_duration_template inverse_resolution_template negative_prompt_keep_metadata vision_path condition_frame_indexes_vision condition_video_keep resolution aspect_ratio fps num_frames video_save_quality image_save_quality enable_sound sound_path action_path domain_name image_size action_chunk_size raw_action_dim view_point max_new_tokens do_sample temperature top_k top_p repetition_penalty presence_penalty video_fps control_guidance control_guidance_interval edge blur depth seg wsm negative_prompt_file num_video_frames_per_chunk num_conditional_frames max_frames show_control_condition show_input num_first_chunk_conditional_frames share_vision_temporal_positions emphasize_control_in_prompt model_mode prompt_upsampling defaults_file"
is_int() { case "$1" in ''|*[!0-9-]*|-) return 1 ;; *) return 0 ;; esac; }
number_in() {  # number_in LOC VALUE TYPE LOW HIGH: LOW < VALUE <= HIGH (HIGH may be empty)
    [ "$3" = number ] || invalid "$1" "Input should be a valid number [type=float_type, input_value=$2, input_type=$3]"
    awk -v v="$2" -v lo="$4" 'BEGIN { exit !(v > lo) }' ||
        invalid "$1" "Input should be greater than $4 [type=greater_than, input_value=$2, input_type=float]"
    [ -z "$5" ] || awk -v v="$2" -v hi="$5" 'BEGIN { exit !(v <= hi) }' ||
        invalid "$1" "Input should be less than or equal to $5 [type=less_than_equal, input_value=$2, input_type=float]"
}
in_file() {  # in_file LOC PATH: a file relative to the sample (common.py:272-279)
    case "$2" in http://*|https://*|s3://*) return 0 ;; /*) _p=$2 ;; *) _p="$SAMPLE_DIR/$2" ;; esac
    [ -f "$_p" ] || invalid "$1" "Value error, Path does not point to a file: $2 [type=value_error, input_value='$2', input_type=str]"
}
# load_sample FILE: read and validate one sample file (common.py:1053-1070); sets SAMPLE,
# SAMPLE_DIR, FLAT, NAME, MODE, PROMPT, VISION, FRAMES, STEPS and HINTS.
load_sample() {
SAMPLE=$1
[ -f "$SAMPLE" ] || die FileNotFoundError "[Errno 2] No such file or directory: '$SAMPLE'"
SAMPLE_DIR=$(dirname "$SAMPLE")
FLAT=$(awk -f "$AWK_JSON" "$SAMPLE") ||
    die json.decoder.JSONDecodeError "$(echo "$FLAT" | sed -n "s/^ERROR$TAB//p")"
NAME=""; MODE=""; PROMPT=""; VISION=""; FRAMES=""; STEPS=""; HINTS=""
while IFS="$TAB" read -r path type value; do
    [ "$path" = @ ] && continue
    key=${path%%.*}
    case " $TOP " in *" $key "*) ;; *)
        invalid "$path" "Extra inputs are not permitted [type=extra_forbidden, input_value=$value, input_type=$type]" ;;
    esac
    case "$path" in
        name) NAME=$value ;;
        prompt) PROMPT=$value ;;
        model_mode)
            case "$value" in text2image|text2video|image2image|image2video|video2video|audio_image2video|forward_dynamics|inverse_dynamics|wam|reasoner) MODE=$value ;; *)
                invalid model_mode "Input should be 'text2image', 'text2video', 'image2image', 'image2video', 'video2video', 'audio_image2video', 'forward_dynamics', 'inverse_dynamics', 'wam' or 'reasoner' [type=enum, input_value='$value', input_type=str]" ;;
            esac ;;
        resolution)
            case "$type:$value" in string:256|string:480|string:720|string:768) ;; *)
                invalid resolution "Input should be '256', '480', '720' or '768' [type=literal_error, input_value=$value, input_type=$type]" ;;
            esac ;;
        aspect_ratio)
            case "$type:$value" in string:1,1|string:4,3|string:3,4|string:16,9|string:9,16) ;; *)
                invalid aspect_ratio "Input should be '1,1', '4,3', '3,4', '16,9' or '9,16' [type=literal_error, input_value=$value, input_type=$type]" ;;
            esac ;;
        fps|num_frames|num_steps|seed)
            is_int "$value" || invalid "$path" "Input should be a valid integer [type=int_type, input_value=$value, input_type=$type]"
            if [ "$path" != seed ] && [ "$value" -lt 1 ]; then
                invalid "$path" "Input should be greater than or equal to 1 [type=greater_than_equal, input_value=$value, input_type=int]"
            fi
            [ "$path" = num_frames ] && FRAMES=$value
            [ "$path" = num_steps ] && STEPS=$value ;;
        guidance)
            [ "$type" = number ] || invalid guidance "Input should be a valid number [type=float_type, input_value=$value, input_type=$type]"
            awk -v g="$value" 'BEGIN { exit !(g >= 0 && g <= 7) }' || invalid guidance \
                "Input should be less than or equal to 7 [type=less_than_equal, input_value=$value, input_type=float]" ;;
        vision_path) in_file vision_path "$value"; VISION=$value ;;
        edge|blur|depth|seg|wsm) HINTS="$HINTS $path" ;;
        edge.preset_edge_threshold|blur.preset_blur_strength)
            case "$value" in none) [ "$key" = blur ] || invalid "$path" "Input should be 'very_low', 'low', 'medium', 'high' or 'very_high' [type=enum, input_value='$value', input_type=str]" ;;
                very_low|low|medium|high|very_high) ;;
                *) invalid "$path" "Input should be 'very_low', 'low', 'medium', 'high' or 'very_high' [type=enum, input_value='$value', input_type=str]" ;;
            esac ;;
        *.weight) [ "$type" = number ] || invalid "$path" "Input should be a valid number [type=float_type, input_value=$value, input_type=$type]" ;;
        max_new_tokens|top_k)  # PositiveInt (args.py:705, 711)
            is_int "$value" || invalid "$path" "Input should be a valid integer [type=int_type, input_value=$value, input_type=$type]"
            [ "$value" -gt 0 ] || invalid "$path" "Input should be greater than 0 [type=greater_than, input_value=$value, input_type=int]" ;;
        temperature) number_in "$path" "$value" "$type" 0 100 ;;  # (0, 100], args.py:652
        top_p) number_in "$path" "$value" "$type" 0 1 ;;  # (0, 1], args.py:653
        repetition_penalty|video_fps) number_in "$path" "$value" "$type" 0 "" ;;  # > 0
        presence_penalty)
            [ "$type" = number ] || invalid "$path" "Input should be a valid number [type=float_type, input_value=$value, input_type=$type]" ;;
        do_sample)  # pydantic's lax bool: true/false and the strings it reads as one
            case "$type:$value" in bool:*|number:0|number:1) ;;
                string:true|string:false|string:yes|string:no|string:on|string:off|string:1|string:0|string:t|string:f|string:y|string:n) ;;
                *) invalid "$path" "Input should be a valid boolean, unable to interpret input [type=bool_parsing, input_value=$value, input_type=$type]" ;;
            esac ;;
        *.control_path) in_file "$path" "$value" ;;
        edge.*|blur.*|depth.*|seg.*|wsm.*)
            invalid "$path" "Extra inputs are not permitted [type=extra_forbidden, input_value=$value, input_type=$type]" ;;
    esac
done <<EOF
$FLAT
EOF
[ -n "$NAME" ] || NAME=$(basename "$SAMPLE" .json)
if [ -z "$MODE" ]; then
    if [ -n "$VISION" ]; then MODE=video2video; else MODE=text2video; fi
    [ "$FRAMES" = 1 ] && MODE=text2image
fi
for hint in $HINTS; do
    if [ -z "$VISION" ] && ! echo "$FLAT" | grep -q "^$hint\.control_path$TAB"; then
        die ValueError "transfer inference requires 'vision_path' or a pre-computed 'control_path' (hint: $hint)"
    fi
done
}
# Every sample is read and validated before the model loads (common.py:1065-1070): one bad
# sample ends the process before any runs (skip_invalid_samples is off, common.py:902).
ALL_REASONER=1
for _f in $FILES; do
    load_sample "$_f"
    [ "$MODE" = reasoner ] || ALL_REASONER=0
done

# --- the reasoner (inference.py:1899-1986) -----------------------------------------------
# Its "answer" is the text after the prompt's last "User prompt: " (the whole prompt
# without one) and a sentence naming what it was conditioned on; scenario "empty" is a
# model that generates nothing (upstream then keeps the prompt, omni_mot_model.py:
# 5311-5314), "echo" one that repeats the user's text. The answer keeps the sample file's
# JSON escapes in sample_outputs.json and is decoded (\uXXXX included) in the .txt.
unescape_json() {
    awk 'function hexval(h,  i, v) { v = 0; for (i = 1; i <= 4; i++)
             v = v * 16 + index("0123456789abcdef", tolower(substr(h, i, 1))) - 1; return v }
         function utf8(c) {
             if (c < 128) return sprintf("%c", c)
             if (c < 2048) return sprintf("%c%c", 192 + int(c / 64), 128 + c % 64)
             return sprintf("%c%c%c", 224 + int(c / 4096), 128 + int(c / 64) % 64, 128 + c % 64) }
         { s = $0; n = length(s); i = 1; out = ""
           while (i <= n) {
               c = substr(s, i, 1)
               if (c != "\\") { out = out c; i++; continue }
               e = substr(s, i + 1, 1)
               if (e == "u") { out = out utf8(hexval(substr(s, i + 2, 4))); i += 6; continue }
               if (e == "n") out = out "\n"; else if (e == "t") out = out "\t"
               else if (e == "r") out = out "\r"; else out = out e
               i += 2 }
           printf "%s", out }'
}
# prompt_blocked: the prompt guardrail's verdict on a [standin:guardrail] prompt. With
# --keep-going the error is logged, not written (common/inference.py:262-266, script.py:
# 70), and it returns 0 (the sample ends); without, the process ends. Returns 1 (go on)
# for any other prompt.
prompt_blocked() {
    case "$PROMPT" in *"[standin:guardrail]"*) ;; *) return 1 ;; esac
    # the text guardrail's verdict (presets.py:50-52, core.py:55-57, qwen3guard.py:60)
    log CRITICAL "cosmos_framework/auxiliary/guardrail/common/presets.py:52:run_text_guardrail" \
        "GUARDRAIL BLOCKED: QWEN3GUARD: Prompt blocked by Qwen3Guard. Safety: Unsafe, Categories: ['Violent']"
    _blocked="Guardrail blocked prompt '$OUT_DIR': '$PROMPT'"
    if [ "$KEEP_GOING" = 1 ]; then
        log ERROR "cosmos_framework/inference/common/inference.py:266:_handle_sample_exception" \
            "Error generating sample '$NAME': $_blocked"
        return 0
    fi
    {
        echo "ValueError: $_blocked"
        echo ""
        echo "The above exception was the direct cause of the following exception:"
        echo ""
    } >&2
    die ValueError "Error generating sample '$NAME': $_blocked"
}
reason() {
    # build_sample runs after the model loads (script.py:57-63); str.strip() (args.py:726)
    [ -n "$(printf '%s' "$PROMPT" | sed 's/\\[nrt]//g' | tr -d ' \t')" ] ||
        die ValueError "Reasoner inference requires a non-empty 'prompt'."
    mkdir -p "$OUT_DIR"
    cp "$SAMPLE" "$OUT_DIR/sample_args.json"  # written without a log line (:1941)
    if [ "$GUARDRAILS" = 1 ]; then  # the text guardrail on the prompt (:1942)
        prompt_blocked && return 0
    fi
    # the text generation is outside any handler (inference.py:1945-1947): an OOM in it
    # ends the process
    [ "$SCENARIO" = cutlass ] &&  # (see the generation's below)
        echo "Failed to initialize the CUTLASS kernel. Last CUDA error is: no error" >&2
    case "$PROMPT" in *"[standin:oom]"*)
        sleep 0.1  # it generates a while first (see the generation's OOM below)
        die torch.OutOfMemoryError "CUDA out of memory. Tried to allocate 6.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.12 GiB is free." ;;
    esac
    case "$VISION" in
        "") _seen="From the text alone" ;;
        *.mp4|*.MP4) _seen="Seen in the video" ;;
        *) _seen="Seen in the image" ;;
    esac
    _user=$(printf '%s' "$PROMPT" | sed 's/.*User prompt: //')
    case "$SCENARIO" in
        empty) _text=$PROMPT ;;
        echo) _text=$_user ;;
        *) _text="$_user $_seen: soft light, a slow camera, fine detail." ;;
    esac
    if [ "$SCENARIO" = slow ]; then sleep 3; else pause 0.2; fi
    printf '%s' "$_text" | unescape_json > "$OUT_DIR/reasoner_text.txt"
    printf '{"args": {"name": "%s", "model_mode": "reasoner"}, "status": "success", "message": null, "stack_trace": null, "outputs": [{"content": {"reasoner_text": "%s"}, "files": ["%s"]}]}\n' \
        "$NAME" "$_text" "$OUT_DIR/reasoner_text.txt" > "$OUT_DIR/sample_outputs.json"
    log SUCCESS "cosmos_framework/inference/inference.py:1981:_generate_reasoner_batch" \
        "[RANK 0] Saved reasoner outputs to '$OUT_DIR'"
}

# --- generation ---------------------------------------------------------------------------
# generate: the current sample (inference.py:1517-1896). Handled errors (a blocked prompt)
# end only the sample with --keep-going (common/inference.py:262-266), else the process;
# the generation step itself is outside the handler: an OOM ends the process (I:1560-1564).
generate() {
OUT_DIR="$OUTPUT/$NAME"
if [ "$MODE" = reasoner ]; then
    reason
    return 0
fi
# The sample's data is prepared lazily, just before it runs and outside any handler
# (inference.py:1471-1479, common/inference.py:141-151): an input that cannot be read
# ends the process before this sample's sample_args.json is written.
case "$PROMPT" in *"[standin:badinput]"*)
    {  # the frames upstream's traceback has there (inference.py:1124-1131, 642-697)
        echo "Traceback (most recent call last):"
        echo "  File \"/workspace/cosmos_framework/scripts/inference.py\", line 92, in <module>"
        echo "    main()"
        echo "  File \"/workspace/cosmos_framework/inference/inference.py\", line 1130, in __getitem__"
        echo "    data_batch = get_sample_data(sample_args=sample_args, model=self._model)"
        echo "  File \"/workspace/cosmos_framework/inference/inference.py\", line 697, in get_sample_data"
        echo "    conditioning_frames = load_conditioning_video("
        echo "RuntimeError: Failed to read video '${VISION:-$NAME}': Invalid data found when processing input"
    } >&2
    if [ "$LAUNCHER" = torchrun ]; then
        echo "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: " >&2
    fi
    exit 1 ;;
esac
mkdir -p "$OUT_DIR"
cp "$SAMPLE" "$OUT_DIR/sample_args.json"
# Lines logged with rank0_only=False carry "[RANK r] " on every rank (log.py:102-108);
# only a replica's first rank writes a sample's files and says so (should_process_sample,
# I:2012-2014), so with one replica (the latency preset) that is rank 0 alone.
if [ -n "$HINTS" ]; then
    log INFO "cosmos_framework/inference/inference.py:1843:_generate_transfer_batch" \
        "[RANK 0] Saved sample args to '$OUT_DIR/sample_args.json'"
else
    log INFO "cosmos_framework/inference/inference.py:1547:generate_batch" \
        "[RANK 0] Saved sample args to '$OUT_DIR/sample_args.json'"
fi
if [ "$SCENARIO" = nccl ] && [ "$NPROC" -gt 1 ]; then
    echo "[rank0]:[W1205 10:57:09.249883195 ProcessGroupNCCL.cpp:5138] Guessing device ID based on global rank. This can cause a hang if rank to GPU mapping is heterogeneous. You can specify device_id in init_process_group()" >&2
    echo "Fatal Python error: Segmentation fault" >&2
    exit 139
fi
for hint in $HINTS; do
    _ctrl=$(echo "$FLAT" | sed -n "s/^$hint\.control_path$TAB[a-z]*$TAB//p")
    if [ -n "$_ctrl" ]; then
        log INFO "cosmos_framework/inference/transfer.py:113:_load_control" "Loaded pre-computed $hint control from $_ctrl"
    else
        log INFO "cosmos_framework/inference/transfer.py:135:_load_control" "Computing $hint control input on the fly"
    fi
done
[ -n "$STEPS" ] || { [ "$MODE" = text2image ] && STEPS=50 || STEPS=35; }
# scenario "cutlass": a GPU whose attention kernels fail to start, as Cosmos3-Nano on an
# ARM64 GB300 (cosmos-framework#42): the warning on stderr as each sample runs, then exit
# 0 with outputs (invalid ones there)
[ "$SCENARIO" = cutlass ] &&
    echo "Failed to initialize the CUTLASS kernel. Last CUDA error is: no error" >&2
_oom=0
[ "$SCENARIO" = oom ] && _oom=1
case "$PROMPT" in *"[standin:oom]"*) _oom=1 ;; esac
for _k in $(awk -v s="$STEPS" 'BEGIN { for (j = 0; j <= 5; j++) print int(s * j / 5) }'); do
    _pct=$((_k * 100 / STEPS))
    printf '\rSampling: %3d%%|%-10s| %d/%d [00:%02d<00:%02d,  1.50it/s]' "$_pct" \
        "$(printf '%*s' $((_pct / 10)) '' | tr ' ' '#')" "$_k" "$STEPS" $((_k % 60)) \
        $(((STEPS - _k) % 60)) >&2
    if [ "$_oom" = 1 ] && [ "$_k" -ge $((STEPS / 2)) ]; then
        # sampling takes a while before memory runs out, whatever the speed: a traceback on
        # stderr microseconds after a line on stdout may be stamped before it (each stream
        # is read on its own), which a real run never shows
        sleep 0.1
        echo "" >&2
        die torch.OutOfMemoryError "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 3.12 GiB is free. Of the allocated memory 74.50 GiB is allocated by PyTorch. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
    fi
    pause 0.05
done
echo "" >&2
if [ -z "$HINTS" ] && [ "$GUARDRAILS" = 1 ]; then
    # the prompt guardrail runs as the video is saved (inference.py:1758-1762, common/
    # inference.py:280); transfer outputs are not guardrailed (inference.py:1826-1896)
    prompt_blocked && return 0
fi

OUTS=""
if [ "$MODE" = text2image ] || [ "$FRAMES" = 1 ]; then
    printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000\377\331' > "$OUT_DIR/vision.jpg"
    OUTS="\"$OUT_DIR/vision.jpg\""
else
    case "$VISION" in
        *.mp4) case "$VISION" in /*) cp "$VISION" "$OUT_DIR/vision.mp4" ;; *) cp "$SAMPLE_DIR/$VISION" "$OUT_DIR/vision.mp4" ;; esac ;;
        *) printf '\000\000\000\030ftypisom\000\000\002\000isomiso2' > "$OUT_DIR/vision.mp4" ;;
    esac
    OUTS="\"$OUT_DIR/vision.mp4\""
    for hint in $HINTS; do
        cp "$OUT_DIR/vision.mp4" "$OUT_DIR/control_$hint.mp4"
        OUTS="$OUTS, \"$OUT_DIR/control_$hint.mp4\""
        log INFO "cosmos_framework/inference/inference.py:1881:_generate_transfer_batch" \
            "[RANK 0] Saved control video to '$OUT_DIR/control_$hint.mp4'"
    done
fi
printf '{"args": {"name": "%s", "model_mode": "%s"}, "status": "success", "message": null, "stack_trace": null, "outputs": [{"content": {}, "files": [%s]}]}\n' \
    "$NAME" "$MODE" "$OUTS" > "$OUT_DIR/sample_outputs.json"
if [ -n "$HINTS" ]; then
    log SUCCESS "cosmos_framework/inference/inference.py:1889:_generate_transfer_batch" \
        "[RANK 0] Saved transfer outputs to '$OUT_DIR/sample_outputs.json'"
else
    log SUCCESS "cosmos_framework/inference/inference.py:1812:generate_batch" \
        "[RANK 0] Saved sample outputs to '$OUT_DIR/sample_outputs.json'"
fi
}
log INFO "cosmos_framework/scripts/inference.py:46:inference" "Loaded $(echo "$FILES" | grep -c .) samples"
# is_reasoner_only: every sample is the reasoner's (script.py:47-49), said once
if [ "$ALL_REASONER" = 1 ]; then
    log INFO "cosmos_framework/scripts/inference.py:49:inference" \
        "Reasoner-only inputs detected; generation vision tokenizer will not be loaded"
fi
for _f in $FILES; do
    load_sample "$_f"
    generate
done
exit 0
