#!/bin/sh
# cosmos_standin.sh: a double of Cosmos-Transfer1's transfer.py under torchrun (POSIX sh;
# runs under busybox sh with no python, and under /bin/sh on a workstation).
#
# UPSTREAM: nvidia-cosmos/cosmos-transfer1 at commit 5005e823 (2026-06-07). Each behaviour
# below names the upstream file:line it mirrors (docs/sandbox.md lists them too).
#
# INVOCATION: exactly what a container runs, either with the script itself in front or as
# a `torchrun` on PATH (symlink or copy this file as /usr/local/bin/torchrun):
#     cosmos_standin.sh torchrun --nproc_per_node=1 --nnodes=1 --node_rank=0 \
#         cosmos_transfer1/diffusion/inference/transfer.py --checkpoint_dir checkpoints \
#         --video_save_folder OUT --controlnet_specs SPEC.json --num_gpus 1 ...
#   torchrun's own options end at the first item that is not an option (the script);
#   without torchrun in front, the first item may be the script itself (python mode).
#
# WHAT UPSTREAM DOES, AND THIS DOUBLE WITH IT:
#   import       transfer.py:32-46 imports cosmos_transfer1 at the top; torchrun puts only
#                the script's folder on sys.path, so unless PYTHONPATH names the repo root
#                (README/examples: `PYTHONPATH=$(pwd) torchrun ...`; the Dockerfile sets
#                no PYTHONPATH and installs no package, Dockerfile:16-55) every rank dies
#                with "ModuleNotFoundError: No module named 'cosmos_transfer1'". PYTHONPATH
#                entries are resolved as Python does (relative to the working directory,
#                an empty entry is the working directory). A missing script fails as
#                python does: "can't open file ...: [Errno 2]", exit 2.
#   argv         transfer.py:52-174: every flag with its type, choices, default and
#                required; argparse's rules (prefix abbreviations, --flag=value, an item
#                that starts with '-' is an option unless it is a negative number or has
#                a space, store_true refuses a value, last one wins). Errors print the
#                usage and "transfer.py: error: ..." on stderr and exit 2 (argparse).
#   spec         inference_utils.py:1197-1213 load_controlnet_specs (FileNotFoundError,
#                json.decoder.JSONDecodeError, "Invalid hint_key") and transfer.py:183-185
#                (a scalar spec key wins unless "--<key>" is itself an argv item).
#   validation   inference_utils.py:1216-1277 validate_controlnet_specs, upstream's
#                messages: "Must have 'input_video' specified if sigma_max < 80", "<hint>
#                controlnet must have 'input_control' video specified if no
#                'input_video' specified.", "No default distilled checkpoint for <hint>.
#                Users must specify ckpt_path in config.", "Control weight for <hint>
#                must be a valid non-negative float or a path to a .pt file.".
#   seeds        transfer.py:218 -> misc.py:151-163 np.random.seed(seed), and per clip
#                world_generation_pipeline.py:623 seed + i_clip -> misc.py:181
#                np.random.RandomState: "ValueError: Seed must be between 0 and
#                2**32 - 1" past 4294967295 (clip count: COSMOS_STANDIN_CLIPS).
#   ranks        transfer.py:222-231 initialises torch.distributed only when
#                --num_gpus > 1; distributed.py:63-66 then logs "[RANK r]Initialized
#                distributed training with local rank r with timeout 1800" on every rank
#                (log.py:98-104). Loguru lines come from rank 0 only (log.py:52-61); each
#                rank draws its own tqdm bar on stderr (world_generation_pipeline.py:558).
#                After the process group exists, torch's excepthook prefixes every
#                traceback line with "[rank<r>]: " (pytorch distributed_c10d.py,
#                _distributed_excepthook); before it (import, argv, spec, seed) tracebacks
#                are bare and printed by every rank. Under torchrun a failed worker ends
#                with torchrun's ChildFailedError footer (Failures, Root Cause, exitcode)
#                and torchrun exits 1.
#
# OUTPUTS: prints the Transfer1 log phases of docs/cosmos.md (loguru lines on stdout, tqdm
# bars with \r redraws on stderr) and writes, into --video_save_folder,
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
#   COSMOS_STANDIN_FAIL_RANK the rank that raises in a failure scenario (default 0).
#   COSMOS_STANDIN_STOP_AFTER  "args": stop with status 0 once argparse accepted the argv;
#                            "spec": once the spec and the seed were checked too (tests
#                            of the launch contract).
#
# SCENARIOS AND THEIR SIGNATURES (exit status 1 unless said otherwise):
#   ok            every phase, outputs written, exit 0.
#   oom           "torch.OutOfMemoryError: CUDA out of memory." during sampling (from
#                 rank COSMOS_STANDIN_FAIL_RANK), then torchrun's ChildFailedError footer.
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
SEED_LIMIT=4294967295
VALID_HINTS="vis seg edge depth keypoint upscale hdmap lidar"
HINT_SET="{'vis', 'seg', 'edge', 'depth', 'keypoint', 'upscale', 'hdmap', 'lidar'}"
LEVELS="very_low low medium high very_high"
UPSTREAM_SCRIPT="cosmos_transfer1/diffusion/inference/transfer.py"
NPROC=1
TORCHRUN=0
DIST=0  # 1 once torch.distributed is initialised: tracebacks get [rank<r>]: prefixes
NL='
'

# --- torchrun in front ------------------------------------------------------------------
case "$0" in torchrun|*/torchrun) TORCHRUN=1 ;; esac
case "${1:-}" in
    torchrun|*/torchrun) TORCHRUN=1; shift ;;
    --nproc_per_node*|--nproc-per-node*|--nnodes*|--node_rank*|--node-rank*|--standalone) TORCHRUN=1 ;;
esac
SCRIPT=""
if [ "$TORCHRUN" = 1 ]; then
    while [ $# -gt 0 ]; do
        case "$1" in
            --nproc_per_node=*|--nproc-per-node=*) NPROC="${1#*=}" ;;
            --nproc_per_node|--nproc-per-node) NPROC="${2:-1}"; shift ;;
            --nnodes|--node_rank|--node-rank|--master_addr|--master-addr|--master_port|\
            --master-port|--rdzv_backend|--rdzv-backend|--rdzv_endpoint|--rdzv-endpoint|\
            --rdzv_id|--rdzv-id|--max_restarts|--max-restarts|--log_dir|--log-dir) shift ;;
            -*) ;;
            *) break ;;
        esac
        shift
    done
    SCRIPT="${1:-}"
    [ $# -gt 0 ] && shift
else
    case "${1:-}" in *.py) SCRIPT="$1"; shift ;; esac
fi
case "$NPROC" in ''|*[!0-9]*) NPROC=1 ;; esac
[ "$NPROC" -lt 1 ] && NPROC=1

# --- helpers --------------------------------------------------------------------------
now() { date '+%m-%d %H:%M:%S'; }
SCRIPT_LINE=0

# log LEVEL FUNCTION MESSAGE: one loguru-format line on stdout (rank 0 only: log.py:52-61).
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

# bar TOTAL: one unlabelled tqdm bar per rank on stderr counting 0..TOTAL with \r redraws.
bar_start() {
    _r=0
    while [ "$_r" -lt "$NPROC" ]; do
        printf '\r  0%%|          | 0/%d [00:00<?, ?it/s]' "$1" >&2
        _r=$((_r + 1))
    done
}
bar_step() {
    _pct=$(( $1 * 100 / $2 ))
    _r=0
    while [ "$_r" -lt "$NPROC" ]; do
        printf '\r%3d%%|##########| %d/%d [00:%02d<00:00,  1.00s/it]' "$_pct" "$1" "$2" "$1" >&2
        [ "$1" -eq "$2" ] && printf '\n' >&2
        _r=$((_r + 1))
    done
    return 0
}

# line_value LINE KEY: the string value of "KEY" in one JSON line.
line_value() {
    printf '%s\n' "$1" | sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p"
}

# torchrun_footer EXITCODE [DETAIL]: the elastic agent's report when worker FAIL_RANK failed
# (torch/distributed/elastic/multiprocessing/errors/__init__.py). With several ranks the
# others are sent SIGTERM first, as the agent does. The caller exits (torchrun exits 1).
torchrun_footer() {
    _code="$1"; _root="${FAIL_RANK:-0}"
    _detail="${2:-To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html}"
    {
        _r=0
        while [ "$_r" -lt "$NPROC" ]; do
            [ "$_r" != "$_root" ] && echo "W1121 $(date '+%H:%M:%S') 1 torch/distributed/elastic/multiprocessing/api.py:897] Sending process $((42 + _r)) closing signal SIGTERM"
            _r=$((_r + 1))
        done
        echo "E1121 $(date '+%H:%M:%S') 1 torch/distributed/elastic/multiprocessing/api.py:869] failed (exitcode: $_code) local_rank: $_root (pid: $((42 + _root))) of binary: /usr/bin/python"
        echo "Traceback (most recent call last):"
        echo "  File \"/usr/local/bin/torchrun\", line 8, in <module>"
        echo "    sys.exit(main())"
        echo "  File \"/usr/local/lib/python3.12/dist-packages/torch/distributed/run.py\", line 892, in main"
        echo "    run(args)"
        echo "  File \"/usr/local/lib/python3.12/dist-packages/torch/distributed/launcher/api.py\", line 270, in launch_agent"
        echo "    raise ChildFailedError("
        echo "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: "
        echo "============================================================"
        echo "$UPSTREAM_SCRIPT FAILED"
        echo "------------------------------------------------------------"
        echo "Failures:"
        echo "  <NO_OTHER_FAILURES>"
        echo "------------------------------------------------------------"
        echo "Root Cause (first observed failure):"
        echo "[0]:"
        echo "  time      : $(date '+%Y-%m-%d_%H:%M:%S')"
        echo "  host      : cosmos-host"
        echo "  rank      : $_root (local_rank: $_root)"
        echo "  exitcode  : $_code (pid: $((42 + _root)))"
        echo "  error_file: <N/A>"
        echo "  traceback : $_detail"
        echo "============================================================"
    } >&2
}

# worker_exit CODE: a worker ended with CODE; under torchrun the agent reports it.
worker_exit() {
    if [ "$TORCHRUN" = 1 ] && [ "$1" != 0 ]; then
        torchrun_footer "$1"
        exit 1
    fi
    exit "$1"
}

# traceback EXCEPTION_LINE [FRAME_LINES]: a Python traceback on stderr. Before
# torch.distributed exists every rank prints it bare; after, rank FAIL_RANK prints it with
# its "[rank<r>]: " prefix (distributed_c10d.py _distributed_excepthook).
traceback() {
    _frames="${2:-  File \"/workspace/$UPSTREAM_SCRIPT\", line 433, in <module>$NL    demo(args, control_inputs)}"
    _text="Traceback (most recent call last):$NL$_frames$NL$1"
    if [ "$DIST" = 1 ]; then
        printf '%s\n' "$_text" | sed "s/^/[rank${FAIL_RANK:-0}]: /" >&2
    else
        _r=0
        while [ "$_r" -lt "$NPROC" ]; do
            printf '%s\n' "$_text" >&2
            _r=$((_r + 1))
        done
    fi
}

fail_with() {
    traceback "$1" "${2:-}"
    worker_exit 1
}

# python_traceback EXCEPTION_LINE: the worker's traceback alone (the caller adds the footer).
python_traceback() { traceback "$1"; }

FAIL_RANK="${COSMOS_STANDIN_FAIL_RANK:-0}"
case "$FAIL_RANK" in ''|*[!0-9]*) FAIL_RANK=0 ;; esac
[ "$FAIL_RANK" -ge "$NPROC" ] && FAIL_RANK=0

if [ "${COSMOS_STANDIN_IGNORE_TERM:-0}" = "1" ]; then
    trap '' TERM
else
    trap 'echo "W1121 torch/distributed/elastic/agent/server/api.py:704] Received Signals.SIGTERM death signal, shutting down workers" >&2; exit 143' TERM
fi
trap 'exit 130' INT

# --- the script and its imports (transfer.py:32-46) ----------------------------------------
if [ -n "$SCRIPT" ]; then
    case "$SCRIPT" in /*) SCRIPT_ABS="$SCRIPT" ;; *) SCRIPT_ABS="$(pwd)/$SCRIPT" ;; esac
    if [ ! -f "$SCRIPT" ]; then
        _r=0
        while [ "$_r" -lt "$NPROC" ]; do
            echo "/usr/bin/python: can't open file '$SCRIPT_ABS': [Errno 2] No such file or directory" >&2
            _r=$((_r + 1))
        done
        worker_exit 2
    fi
    # sys.path: the script's folder, then PYTHONPATH (site-packages hold no cosmos_transfer1).
    _found=0
    _paths="$(dirname "$SCRIPT")"
    if [ -n "${PYTHONPATH:-}" ]; then
        _old_ifs="$IFS"; IFS=':'
        for _entry in $PYTHONPATH""; do
            _paths="$_paths$NL${_entry:-.}"
        done
        IFS="$_old_ifs"
        case "$PYTHONPATH" in *:) _paths="$_paths$NL." ;; esac
    fi
    _old_ifs="$IFS"; IFS="$NL"
    for _entry in $_paths; do
        if [ -d "$_entry/cosmos_transfer1" ] || [ -f "$_entry/cosmos_transfer1.py" ]; then
            _found=1
        fi
    done
    IFS="$_old_ifs"
    if [ "$_found" = 0 ]; then
        fail_with "ModuleNotFoundError: No module named 'cosmos_transfer1'" \
            "  File \"$SCRIPT_ABS\", line 32, in <module>$NL    import cosmos_transfer1.utils.fix_vllm_registration"
    fi
fi

# --- argv: upstream's argparse (transfer.py:52-174) -------------------------------------
# name:kind in upstream's order; kind: str, int, float, level (choices LEVELS), one (int,
# choices [1]), flag (store_true), help.
OPTIONS="help:help prompt:str negative_prompt:str input_video_path:str num_input_frames:one
sigma_max:float blur_strength:level canny_threshold:level controlnet_specs:str
is_av_sample:flag checkpoint_dir:str tokenizer_dir:str video_save_name:str
video_save_folder:str batch_input_path:str batch_size:int num_steps:int guidance:float fps:int
seed:int num_gpus:int offload_diffusion_transformer:flag offload_text_encoder_model:flag
offload_guardrail_models:flag upsample_prompt:flag offload_prompt_upsampler:flag
use_distilled:flag save_input_noise:flag benchmark:flag"
USAGE='usage: transfer.py [-h] [--prompt PROMPT] [--negative_prompt NEGATIVE_PROMPT]
                   [--input_video_path INPUT_VIDEO_PATH]
                   [--num_input_frames {1}] [--sigma_max SIGMA_MAX]
                   [--blur_strength {very_low,low,medium,high,very_high}]
                   [--canny_threshold {very_low,low,medium,high,very_high}]
                   --controlnet_specs CONTROLNET_SPECS [--is_av_sample]
                   [--checkpoint_dir CHECKPOINT_DIR]
                   [--tokenizer_dir TOKENIZER_DIR]
                   [--video_save_name VIDEO_SAVE_NAME]
                   [--video_save_folder VIDEO_SAVE_FOLDER]
                   [--batch_input_path BATCH_INPUT_PATH]
                   [--batch_size BATCH_SIZE] [--num_steps NUM_STEPS]
                   [--guidance GUIDANCE] [--fps FPS] [--seed SEED]
                   [--num_gpus NUM_GPUS] [--offload_diffusion_transformer]
                   [--offload_text_encoder_model] [--offload_guardrail_models]
                   [--upsample_prompt] [--offload_prompt_upsampler]
                   [--use_distilled] [--save_input_noise] [--benchmark]'
INT_RE='^[[:space:]]*[+-]?[0-9](_?[0-9])*[[:space:]]*$'
DIGITS='[0-9](_?[0-9])*'
FLOAT_RE="^[[:space:]]*[+-]?((($DIGITS)(\\.($DIGITS)?)?|\\.($DIGITS))([eE][+-]?($DIGITS))?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])[[:space:]]*\$"

# Upstream's defaults (transfer.py:56-169).
A_prompt="The video captures a stunning, photorealistic scene with remarkable attention to detail, giving it a lifelike appearance that is almost indistinguishable from reality. It appears to be from a high-budget 4K movie, showcasing ultra-high-definition quality with impeccable resolution."
A_negative_prompt="The video captures a game playing, with bad crappy graphics and cartoonish frames."
A_input_video_path=""; A_num_input_frames=1; A_sigma_max=70.0; A_blur_strength=medium
A_canny_threshold=medium; A_controlnet_specs=""; A_checkpoint_dir=checkpoints
A_tokenizer_dir=Cosmos-Tokenize1-CV8x8x8-720p; A_video_save_name=output
A_video_save_folder=outputs/; A_batch_input_path=""; A_batch_size=1; A_num_steps=35
A_guidance=5; A_fps=24; A_seed=1; A_num_gpus=1
for _flag in is_av_sample offload_diffusion_transformer offload_text_encoder_model \
    offload_guardrail_models upsample_prompt offload_prompt_upsampler use_distilled \
    save_input_noise benchmark; do
    eval "A_$_flag=False"
done
SEEN_SPECS=0
ARGV_ITEMS="$NL"  # every argv item, for transfer.py:184 ("--<key>" in sys.argv)
for _item in "$@"; do ARGV_ITEMS="$ARGV_ITEMS$_item$NL"; done

# arg_error MESSAGE: argparse's error(): usage and message on stderr, status 2.
arg_error() {
    printf '%s\n%s\n' "$USAGE" "transfer.py: error: $1" >&2
    worker_exit 2
}

# option_label NAME: how argparse names the option in messages.
option_label() { if [ "$1" = help ]; then echo "-h/--help"; else echo "--$1"; fi; }

# resolve ARG: set OPT_NAME/OPT_KIND/OPT_VALUE/OPT_HAS_VALUE for an option item, or
# OPT_NAME="" with OPT_CLASS A (a value) or O (an unknown option) (argparse
# _parse_optional and _get_option_tuples).
resolve() {
    OPT_NAME=""; OPT_KIND=""; OPT_VALUE=""; OPT_HAS_VALUE=0; OPT_CLASS=A
    case "$1" in
        -) return 0 ;;
        -*) ;;
        *) return 0 ;;
    esac
    OPT_CLASS=O
    _word="$1"; _value=""; _has=0
    case "$1" in
        --*=*) _word="${1%%=*}"; _value="${1#*=}"; _has=1 ;;
    esac
    if [ "$_word" = "-h" ]; then OPT_NAME=help; OPT_KIND=help; OPT_HAS_VALUE=$_has; OPT_VALUE=$_value; return 0; fi
    case "$_word" in
        --?*) ;;
        *)
            if printf '%s' "$1" | grep -Eq '^-[0-9]+$|^-[0-9]*\.[0-9]+$'; then OPT_CLASS=A; fi
            case "$1" in *" "*) OPT_CLASS=A ;; esac
            return 0 ;;
    esac
    _exact=""; _matches=""; _count=0
    for _spec in $OPTIONS; do
        _oname="${_spec%%:*}"
        if [ "--$_oname" = "$_word" ]; then _exact="$_spec"; fi
        case "--$_oname" in
            "$_word"*) _matches="$_matches, --$_oname"; _count=$((_count + 1)); _last="$_spec" ;;
        esac
    done
    if [ -z "$_exact" ] && [ "$_count" -gt 1 ]; then
        arg_error "ambiguous option: $1 could match ${_matches#, }"
    fi
    [ -z "$_exact" ] && [ "$_count" -eq 1 ] && _exact="$_last"
    if [ -z "$_exact" ]; then
        if printf '%s' "$1" | grep -Eq '^-[0-9]+$|^-[0-9]*\.[0-9]+$'; then OPT_CLASS=A; fi
        case "$1" in *" "*) OPT_CLASS=A ;; esac
        return 0
    fi
    OPT_NAME="${_exact%%:*}"; OPT_KIND="${_exact#*:}"; OPT_VALUE="$_value"; OPT_HAS_VALUE=$_has
}

# store NAME KIND VALUE: argparse's type conversion and choices check, then the value.
store() {
    case "$2" in
        int|one)
            printf '%s' "$3" | grep -Eq "$INT_RE" || arg_error "argument --$1: invalid int value: '$3'"
            _v=$(printf '%s' "$3" | tr -d ' _+'); _v=$(printf '%s' "$_v" | sed 's/^\(-\{0,1\}\)0*\([0-9]\)/\1\2/')
            if [ "$2" = one ] && [ "$_v" != 1 ]; then
                arg_error "argument --$1: invalid choice: $_v (choose from 1)"
            fi ;;
        float)
            printf '%s' "$3" | grep -Eq "$FLOAT_RE" || arg_error "argument --$1: invalid float value: '$3'"
            _v=$(printf '%s' "$3" | tr -d ' _') ;;
        level)
            case " $LEVELS " in
                *" $3 "*) _v="$3" ;;
                *) arg_error "argument --$1: invalid choice: '$3' (choose from 'very_low', 'low', 'medium', 'high', 'very_high')" ;;
            esac ;;
        *) _v="$3" ;;
    esac
    eval "A_$1=\$_v"
    [ "$1" = controlnet_specs ] && SEEN_SPECS=1
    return 0
}

EXTRAS=""
while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then
        while [ $# -gt 0 ]; do EXTRAS="$EXTRAS $1"; shift; done
        break
    fi
    resolve "$1"
    if [ -z "$OPT_NAME" ]; then
        EXTRAS="$EXTRAS $1"; shift; continue
    fi
    case "$OPT_KIND" in
        help|flag)
            if [ "$OPT_HAS_VALUE" = 1 ]; then
                arg_error "argument $(option_label "$OPT_NAME"): ignored explicit argument '$OPT_VALUE'"
            fi
            if [ "$OPT_KIND" = help ]; then
                printf '%s\n\nControl to world generation demo script\n' "$USAGE"
                exit 0
            fi
            eval "A_$OPT_NAME=True"; shift; continue ;;
    esac
    _name="$OPT_NAME"; _kind="$OPT_KIND"
    if [ "$OPT_HAS_VALUE" = 1 ]; then
        store "$_name" "$_kind" "$OPT_VALUE"; shift; continue
    fi
    if [ $# -lt 2 ]; then arg_error "argument --$_name: expected one argument"; fi
    resolve "$2"
    if [ "$OPT_CLASS" != A ] || [ "$2" = "--" ]; then arg_error "argument --$_name: expected one argument"; fi
    store "$_name" "$_kind" "$2"
    shift 2
done
if [ "$SEEN_SPECS" = 0 ]; then
    arg_error "the following arguments are required: --controlnet_specs"
fi
if [ -n "$EXTRAS" ]; then
    arg_error "unrecognized arguments:$EXTRAS"
fi
[ "${COSMOS_STANDIN_STOP_AFTER:-}" = args ] && exit 0

# --- the spec: load_controlnet_specs (inference_utils.py:1197-1213) ----------------------
# JSON_AWK flattens a JSON document into "path<TAB>type<TAB>value" lines (objects and
# arrays as their own lines, "a.b" paths, "\n" and "\t" kept escaped); a syntax error
# prints "!error<TAB>line<TAB>column<TAB>char" as Python's json module would count them.
JSON_AWK='
function fail() {
    pre = substr(text, 1, pos - 1); ln = gsub(/\n/, "\n", pre) + 1
    col = pos - (match(pre, /\n[^\n]*$/) ? RSTART : 0)
    printf "!error\t%d\t%d\t%d\n", ln, col, pos - 1; exit 1
}
function ws() { while (pos <= n && index(" \t\r\n", substr(text, pos, 1)) > 0) pos++ }
function str(   out, c, rest) {
    pos++; out = ""
    while (1) {
        if (pos > n) fail()
        rest = substr(text, pos)
        if (match(rest, /^[^"\\]+/)) { out = out substr(rest, 1, RLENGTH); pos += RLENGTH; continue }
        c = substr(text, pos, 1)
        if (c == "\"") { pos++; return out }
        c = substr(text, pos + 1, 1); pos += 2
        if (c == "n") out = out "\\n"; else if (c == "t") out = out "\\t"
        else if (c == "u") { out = out "\\u" substr(text, pos, 4); pos += 4 }
        else if (c == "\"" || c == "\\" || c == "/") out = out c
        else if (c == "r" || c == "b" || c == "f") out = out " "
        else fail()
    }
}
function emit(path, type, value) { printf "%s\t%s\t%s\n", path, type, value }
function val(path,   c, key, i, rest) {
    ws(); if (pos > n) fail()
    c = substr(text, pos, 1)
    if (c == "{") {
        emit(path, "object", ""); pos++; ws()
        if (substr(text, pos, 1) == "}") { pos++; return }
        while (1) {
            ws(); if (substr(text, pos, 1) != "\"") fail()
            key = str(); ws(); if (substr(text, pos, 1) != ":") fail()
            pos++; val(path == "" ? key : path "." key); ws()
            c = substr(text, pos, 1); pos++
            if (c == "}") return
            if (c != ",") { pos--; fail() }
        }
    }
    if (c == "[") {
        emit(path, "array", ""); pos++; ws(); i = 0
        if (substr(text, pos, 1) == "]") { pos++; return }
        while (1) {
            val(path "[" i "]"); i++; ws()
            c = substr(text, pos, 1); pos++
            if (c == "]") return
            if (c != ",") { pos--; fail() }
        }
    }
    if (c == "\"") { emit(path, "string", str()); return }
    rest = substr(text, pos)
    if (match(rest, /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/)) {
        emit(path, (index(substr(rest, 1, RLENGTH), ".") || index(substr(rest, 1, RLENGTH), "e") || index(substr(rest, 1, RLENGTH), "E")) ? "float" : "int", substr(rest, 1, RLENGTH))
        pos += RLENGTH; return
    }
    if (substr(rest, 1, 4) == "true") { emit(path, "bool", "True"); pos += 4; return }
    if (substr(rest, 1, 5) == "false") { emit(path, "bool", "False"); pos += 5; return }
    if (substr(rest, 1, 4) == "null") { emit(path, "NoneType", "None"); pos += 4; return }
    fail()
}
{ text = text (NR > 1 ? "\n" : "") $0 }
END { n = length(text); pos = 1; val(""); ws(); if (pos <= n) fail() }
'
TAB=$(printf '\t')
LOAD_FRAMES="  File \"/workspace/$UPSTREAM_SCRIPT\", line 432, in <module>
    args, control_inputs = parse_arguments()
  File \"/workspace/$UPSTREAM_SCRIPT\", line 177, in parse_arguments
    control_inputs, json_args = load_controlnet_specs(cmd_args)
  File \"/workspace/cosmos_transfer1/diffusion/inference/inference_utils.py\", line 1198, in load_controlnet_specs"
VALIDATE_FRAMES="  File \"/workspace/$UPSTREAM_SCRIPT\", line 433, in <module>
    demo(args, control_inputs)
  File \"/workspace/$UPSTREAM_SCRIPT\", line 217, in demo
    control_inputs = validate_controlnet_specs(cfg, control_inputs)
  File \"/workspace/cosmos_transfer1/diffusion/inference/inference_utils.py\", line 1237, in validate_controlnet_specs"
SPEC="$A_controlnet_specs"
if [ ! -f "$SPEC" ]; then
    fail_with "FileNotFoundError: [Errno 2] No such file or directory: '$SPEC'" "$LOAD_FRAMES"
fi
FLAT=$(awk "$JSON_AWK" "$SPEC")
case "$FLAT" in
    *"!error$TAB"*)
        _at=$(printf '%s\n' "$FLAT" | sed -n "s/^!error$TAB//p" | tr "$TAB" ' ')
        set -- $_at
        fail_with "json.decoder.JSONDecodeError: Expecting value: line $1 column $2 (char $3)" "$LOAD_FRAMES" ;;
esac
# flat_get PATH: "type<TAB>value" of one path (empty when absent).
flat_get() { printf '%s\n' "$FLAT" | awk -F "$TAB" -v p="$1" '$1 == p { print $2 FS $3; exit }'; }
TOP_TYPE=$(printf '%s\n' "$FLAT" | head -n 1 | cut -f 2)
if [ "$TOP_TYPE" != object ]; then
    _t="$TOP_TYPE"; [ "$_t" = array ] && _t=list
    fail_with "AttributeError: '$_t' object has no attribute 'items'" "$LOAD_FRAMES"
fi
HINTS=""
JSON_ARGS=""
for _key in $(printf '%s\n' "$FLAT" | awk -F "$TAB" 'NR > 1 && index($1, ".") == 0 && index($1, "[") == 0 { print $1 }'); do
    _type=$(flat_get "$_key" | cut -f 1)
    case " $VALID_HINTS " in
        *" $_key "*) HINTS="$HINTS $_key"; continue ;;
    esac
    if [ "$_type" = object ]; then
        fail_with "ValueError: Invalid hint_key: $_key. Must be one of $HINT_SET" "$LOAD_FRAMES"
    fi
    JSON_ARGS="$JSON_ARGS $_key"
done
# transfer.py:183-185: a scalar of the spec wins unless "--<key>" is itself an argv item.
for _key in $JSON_ARGS; do
    case "$ARGV_ITEMS" in *"$NL--$_key$NL"*) continue ;; esac
    case "$_key" in *[!a-z_]*) continue ;; esac
    _value=$(flat_get "$_key" | cut -f 2-)
    eval "A_$_key=\$_value"
done
log INFO "parse_arguments" "control_inputs: {$(echo "$HINTS" | sed 's/^ //; s/ /, /g')}"
log INFO "parse_arguments" "args in json: {$(echo "$JSON_ARGS" | sed 's/^ //; s/ /, /g')}"
log INFO "parse_arguments" "final args: {'video_save_folder': '$A_video_save_folder', 'controlnet_specs': '$SPEC', 'num_gpus': $A_num_gpus, 'seed': $A_seed, 'fps': $A_fps, 'num_steps': $A_num_steps}"

# --- validate_controlnet_specs (inference_utils.py:1216-1277) ----------------------------
for hint in $HINTS; do
    _type=$(flat_get "$hint" | cut -f 1)
    if [ -z "$A_input_video_path" ] && awk -v s="$A_sigma_max" 'BEGIN { exit !(s + 0 < 80) }'; then
        fail_with "ValueError: Must have 'input_video' specified if sigma_max < 80" "$VALIDATE_FRAMES"
    fi
    if [ "$_type" != object ]; then
        [ "$_type" = string ] && fail_with "TypeError: 'str' object does not support item assignment" "$VALIDATE_FRAMES"
        fail_with "TypeError: argument of type '$_type' is not iterable" "$VALIDATE_FRAMES"
    fi
    if [ -z "$A_input_video_path" ] && [ -z "$(flat_get "$hint.input_control")" ]; then
        fail_with "ValueError: $hint controlnet must have 'input_control' video specified if no 'input_video' specified." "$VALIDATE_FRAMES"
    fi
    if [ -z "$(flat_get "$hint.ckpt_path")" ]; then
        log INFO "validate_controlnet_specs" "No checkpoint path specified for $hint. Using default."
        if [ "$A_use_distilled" = True ] && [ "$hint" != edge ]; then
            fail_with "ValueError: No default distilled checkpoint for $hint. Users must specify ckpt_path in config." "$VALIDATE_FRAMES"
        fi
    fi
    _weight=$(flat_get "$hint.control_weight")
    _wtype="${_weight%%"$TAB"*}"; _wvalue="${_weight#*"$TAB"}"
    _bad="ValueError: Control weight for $hint must be a valid non-negative float or a path to a .pt file."
    case "$_wtype" in
        "") log WARNING "validate_controlnet_specs" "No control weight specified for $hint. Setting to 0.5." ;;
        int|float) awk -v w="$_wvalue" 'BEGIN { exit !(w + 0 < 0) }' && fail_with "$_bad" "$VALIDATE_FRAMES" ;;
        bool) ;;
        string)
            case "$_wvalue" in
                *.pt) ;;
                *)
                    printf '%s' "$_wvalue" | grep -Eq "$FLOAT_RE" || fail_with "$_bad" "$VALIDATE_FRAMES"
                    awk -v w="$(printf '%s' "$_wvalue" | tr -d ' _')" 'BEGIN { exit !(w + 0 < 0) }' && fail_with "$_bad" "$VALIDATE_FRAMES" ;;
            esac ;;
        object) fail_with "TypeError: float() argument must be a string or a real number, not 'dict'" "$VALIDATE_FRAMES" ;;
        array) fail_with "TypeError: float() argument must be a string or a real number, not 'list'" "$VALIDATE_FRAMES" ;;
        *) fail_with "TypeError: float() argument must be a string or a real number, not '$_wtype'" "$VALIDATE_FRAMES" ;;
    esac
done

# --- the seed: misc.set_random_seed (transfer.py:218 -> misc.py:151-163) ----------------
SEED_FRAMES="  File \"/workspace/$UPSTREAM_SCRIPT\", line 218, in demo
    misc.set_random_seed(cfg.seed)
  File \"numpy/random/mtrand.pyx\", line 4806, in numpy.random.mtrand.seed"
SEED_ERROR="ValueError: Seed must be between 0 and 2**32 - 1"
if awk -v s="$A_seed" -v l="$SEED_LIMIT" 'BEGIN { exit !(s + 0 < 0 || s + 0 > l) }'; then
    fail_with "$SEED_ERROR" "$SEED_FRAMES"
fi
log INFO "set_random_seed" "Using random seed $A_seed."
if [ "${COSMOS_STANDIN_STOP_AFTER:-}" = spec ]; then
    exit 0
fi

# --- torch.distributed (transfer.py:222-231, distributed.py:63-66) -----------------------
if awk -v g="$A_num_gpus" 'BEGIN { exit !(g + 0 > 1) }'; then
    DIST=1
    _r=0
    while [ "$_r" -lt "$NPROC" ]; do
        log CRITICAL "init" "[RANK $_r]Initialized distributed training with local rank $_r with timeout 1800"
        _r=$((_r + 1))
    done
    log INFO "init" "Training with $NPROC GPUs."
fi
OUT_DIR="$A_video_save_folder"
BATCH="$A_batch_input_path"
BATCH_SIZE="$A_batch_size"
NUM_GPUS="$A_num_gpus"
PROMPT=$(flat_get prompt | cut -f 2-)
INPUT_VIDEO="$A_input_video_path"
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
CLIPS="${COSMOS_STANDIN_CLIPS:-1}"
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
# A line's "[standin:guardrail]" blocks that line; "[standin:oom]", "[standin:crash]" or "[standin:hang]"
# makes its chunk fail (or freeze) during sampling.

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
        case "$(line_marker "$_i")" in oom|crash|hang) _fail=$(line_marker "$_i") ;; esac
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
    if [ -z "$(flat_get "$hint.input_control" | grep -v '^NoneType')" ]; then
        AUTO_HINTS="$AUTO_HINTS $hint"
        log INFO "preprocess" "no input_control provided for $hint. generating input control video with $hint model"
        pause 1
    fi
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
        fail_with "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU $FAIL_RANK has a total capacity of 79.10 GiB of which 1.12 GiB is free."
    fi
    if [ "$SCENARIO" = "host_oom" ]; then
        torchrun_footer "-9" "Signal 9 (SIGKILL) received by PID $((42 + FAIL_RANK))"
        exit 1
    fi
    # world_generation_pipeline.py:623 seeds clip i with seed + i (misc.py:181 RandomState).
    if awk -v s="$A_seed" -v c="$clip" -v l="$SEED_LIMIT" 'BEGIN { exit !(s + c > l) }'; then
        fail_with "$SEED_ERROR"
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
