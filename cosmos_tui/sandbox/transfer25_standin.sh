#!/bin/sh
# transfer25_standin.sh: a double of Cosmos-Transfer2.5's examples/inference.py (POSIX sh and
# awk; runs under busybox sh with no python, and under /bin/sh on a workstation).
#
# UPSTREAM: nvidia-cosmos/cosmos-transfer2.5 at commit 2ff49d07 (2026-06-07); docs/cosmos.md,
# "Transfer2.5 contract", cites each behaviour. tests/engine/test_transfer25_standin.py holds
# this script against upstream's own parser (tyro 0.9.35 over a transcription of the models).
#
# INVOCATION: what a container runs, with this script in front (or installed as the
# image's /bin/python and /bin/torchrun):
#     transfer25_standin.sh python examples/inference.py -i SPEC.json -o OUT [flags]
#     transfer25_standin.sh torchrun --nproc_per_node=N --master_port=P examples/inference.py ...
#
# WHAT UPSTREAM DOES, AND THIS DOUBLE WITH IT:
#   argv     tyro with OmitArgPrefixes (examples/inference.py:47-61, 85-90): kebab-case
#            flags (underscores accepted too), -i/--input-files (zero or more), -o/--output-dir
#            (required), setup flags (config.py:213-253) and the sample overrides
#            (config.py:595-604). tyro's refusals print a box on stderr and exit 2
#            ("Unrecognized options: X", "The following arguments are required: X",
#            "Argument X: expected 1 argument", "Argument X: invalid choice: ...");
#            a value pydantic refuses prints pydantic's message and exits 1 (config.py:97-103).
#   samples  .json (one) or .jsonl (one a line) (config.py:353-365); each line validated like
#            InferenceArguments (config.py:311-593; unknown keys forbidden, paths relative to the
#            file's folder and existing): "Error validating parameters from '<file>' at line
#            <i>", "N validation error(s) for InferenceArguments", per error its location and
#            message, exit 1 (config.py:372-378). Duplicate names: "Error: Inference samplename
#            <n> is not unique" (config.py:412-414). No files: "Error: No inference parameter
#            files" (config.py:389-392).
#   download the first run on a host fetches the checkpoints into $HF_HOME (default
#            ~/.cache/huggingface): "Downloading checkpoint ..." (checkpoint_db.py:297),
#            the hf command (checkpoint_db.py:165) and hf's bars; later runs find each
#            repository's marker file and skip it. Without HF_TOKEN the gated nvidia/Cosmos-Guardrail1 is refused
#            (docs/setup.md:112-115) unless --disable-guardrails: huggingface_hub's
#            "Cannot access gated repo" lines, then subprocess.CalledProcessError, exit 1.
#   run      loguru lines on stdout, rank 0 only (log.py:89-119), and into OUT/console.log
#            (cosmos_oss/init.py:93-105); "Saved config to OUT/config.yaml"; per sample
#            "[i/N] Processing sample <name>", the prompt guardrail, one "Generating samples"
#            tqdm bar per chunk on every rank (stderr), "Generated video saved to ...".
#   outputs  OUT/config.yaml, OUT/<name>.json (the sample), OUT/<name>.mp4 (a byte copy of
#            the input video), OUT/<name>.txt (the prompt), OUT/<name>_control_<hint>.mp4 per
#            hint (inference.py:152-343). A prompt with "[standin:guardrail]" is blocked:
#            "Guardrail blocked generation. Prompt: ..." and, with --keep-going (the default),
#            the next sample runs (inference.py:215-221). A prompt with "[standin:oom]" dies of
#            CUDA OOM in its first chunk (the oom scenario for that sample alone).
#
# ENVIRONMENT:
#   COSMOS_STANDIN_SPEED     multiplies every delay (default 1; 0 for none).
#   COSMOS_STANDIN_SCENARIO  ok (default), oom, nccl, gated (refused download), hang.
#   COSMOS_STANDIN_CHUNKS    chunks per sample (default 1).
#   COSMOS_STANDIN_STOP_AFTER  "args": exit 0 once the command line is accepted; "samples":
#                            once the sample files are accepted too.

set -u
SPEED="${COSMOS_STANDIN_SPEED:-1}"
SCENARIO="${COSMOS_STANDIN_SCENARIO:-ok}"
CHUNKS="${COSMOS_STANDIN_CHUNKS:-1}"
NPROC=1
TAB=$(printf '\t')
NL='
'
# --- launcher ------------------------------------------------------------------------------
# Installed as the image's /bin/python or /bin/torchrun, the script's own name is the launcher.
case "$0" in
    torchrun|*/torchrun) set -- torchrun "$@" ;;
    python|python3|*/python|*/python3) set -- python "$@" ;;
esac
case "${1:-}" in
    torchrun|*/torchrun)
        shift
        while [ $# -gt 0 ]; do
            case "$1" in
                --nproc_per_node=*|--nproc-per-node=*) NPROC="${1#*=}" ;;
                --nproc_per_node|--nproc-per-node) NPROC="${2:-1}"; shift ;;
                --master_port|--master-port|--nnodes|--node_rank|--node-rank) shift ;;
                -*) ;;
                *) break ;;
            esac
            shift
        done ;;
    python|python3|*/python|*/python3) shift ;;
esac
[ $# -gt 0 ] && shift  # examples/inference.py
case "$NPROC" in ''|*[!0-9]*) NPROC=1 ;; esac
RANK=0

now() { date '+%m-%d %H:%M:%S'; }
pause() {
    _d=$(awk -v a="$1" -v b="$SPEED" 'BEGIN { printf "%.3f", a * b }')
    case "$_d" in 0.000) return 0 ;; esac
    sleep "$_d" & wait $! 2>/dev/null || true
}
# box TITLE LINE...: tyro's error box on stderr, then exit 2.
box() {
    _title="$1"; shift
    {
        printf '\342\225\255\342\224\200 %s \342\224\200\342\225\256\n' "$_title"
        for _l in "$@"; do printf '\342\224\202 %s \342\224\202\n' "$_l"; done
        printf '\342\224\202 For full helptext, run inference.py --help \342\224\202\n'
        printf '\342\225\260\342\224\200\342\225\257\n'
    } >&2
    exit 2
}

# --- the command line (tyro) -----------------------------------------------------------------
SETUP_VALUE=" model checkpoint-path experiment config-file context-parallel-size compile-tokenizer "
SETUP_FLAG=" disable-guardrails offload-guardrail-models keep-going profile benchmark enable-parallel-tokenizer "
OVR_INT=" seed guidance max-frames context-frame-index num-video-frames-per-chunk num-steps guided-generation-step-threshold "
OVR_STR=" prompt-path prompt negative-prompt video-path image-context-path resolution sigma-max guided-generation-mask "
OVR_BOOL=" show-control-condition show-input keep-input-resolution "
MODELS="edge depth seg vis"
[ "${COSMOS_EXPERIMENTAL_CHECKPOINTS:-}" = 1 ] && MODELS="$MODELS edge/distilled"
INPUTS=""; SEEN_I=0; OUT=""; MODEL=edge; NO_GUARD=0; KEEP=1; OVR=""; UNKNOWN=""
is_value() {  # an item argparse takes as a value: not an option (negative numbers are values)
    case "$1" in -[0-9]*|-.[0-9]*) return 0 ;; -*) return 1 ;; esac
    return 0
}
while [ $# -gt 0 ]; do
    _item="$1"; _val=""; _has=0
    case "$_item" in --*=*) _val="${_item#*=}"; _item="${_item%%=*}"; _has=1 ;; esac
    case "$_item" in --*) _name=$(printf '%s' "${_item#--}" | tr _ -) ;; *) _name="" ;; esac
    shift
    take() {  # the flag's one value
        if [ "$_has" = 1 ]; then return 0; fi
        if [ $# -eq 0 ] || ! is_value "$1"; then box "Parsing error" "Argument $_item: expected 1 argument"; fi
        _val="$1"; _used=1
    }
    _used=0
    case "$_item" in
        -h|--help) echo "usage: inference.py [-h] [OPTIONS]"; exit 0 ;;
        -i|--input-files)
            INPUTS=""; SEEN_I=1
            while [ $# -gt 0 ] && is_value "$1"; do INPUTS="$INPUTS$1$NL"; shift; done
            continue ;;
        -o|--output-dir) take "$@"; OUT="$_val" ;;
        control:edge|control:depth|control:vis|control:seg) continue ;;
        --*)
            case " $SETUP_VALUE $OVR_INT $OVR_STR $OVR_BOOL num-conditional-frames " in
                *" $_name "*)
                    take "$@"
                    case " $OVR_INT " in *" $_name "*)
                        case "$_val" in None) ;; ''|*[!0-9-]*|?*-*)
                            box "Value error" "Error parsing $_item: no type matching {None}|INT could be instantiated from ['$_val']." ;;
                        esac ;;
                    esac
                    case " $OVR_BOOL " in *" $_name "*)
                        case "$_val" in True|False|None) ;; *)
                            box "Parsing error" "Argument $_item: invalid choice: '$_val' (choose from 'True', 'None', 'False')" ;;
                        esac ;;
                    esac
                    case "$_name" in
                        model)
                            case " $MODELS " in *" $_val "*) MODEL="$_val" ;; *)
                                box "Parsing error" "Argument --model: invalid choice: '$_val' (choose from $(printf "'%s', " $MODELS | sed 's/, $//'))" ;;
                            esac ;;
                        num-conditional-frames)
                            case "$_val" in 0|1|2|None) ;; *)
                                box "Parsing error" "Argument $_item: invalid choice: '$_val' (choose from '0', 'None', '1', '2')" ;;
                            esac ;;
                        compile-tokenizer)
                            case "$_val" in NONE|MODERATE|AGGRESSIVE) ;; *)
                                box "Parsing error" "Argument $_item: invalid choice: '$_val' (choose from 'NONE', 'MODERATE', 'AGGRESSIVE')" ;;
                            esac ;;
                    esac
                    case " $SETUP_VALUE " in *" $_name "*) ;; *)
                        [ "$_val" != None ] && OVR="$OVR$(printf '%s' "$_name" | tr - _)$TAB$_val$NL" ;;
                    esac ;;
                *" parallel-tokenizer-grid "*) ;;
                *)
                    _base="${_name#no-}"
                    case " $SETUP_FLAG " in
                        *" $_base "*)
                            [ "$_has" = 1 ] && UNKNOWN="$UNKNOWN $_item"
                            case "$_name" in
                                disable-guardrails) NO_GUARD=1 ;; no-disable-guardrails) NO_GUARD=0 ;;
                                keep-going) KEEP=1 ;; no-keep-going) KEEP=0 ;;
                            esac ;;
                        *) if [ "$_name" = parallel-tokenizer-grid ]; then
                               [ $# -ge 2 ] || box "Parsing error" "Argument $_item: expected 2 arguments"
                               shift 2
                           else UNKNOWN="$UNKNOWN $_item"; fi ;;
                    esac ;;
            esac ;;
        *)
            box "Parsing error" "Argument [{control:edge,control:depth,control:vis,control:seg}]: invalid choice: '$_item' (choose from 'control:edge', 'control:depth', 'control:vis', 'control:seg')" ;;
    esac
    [ "$_used" = 1 ] && shift
done
[ -n "$UNKNOWN" ] && box "Unrecognized options" "Unrecognized options:$UNKNOWN"
_req=""
[ "$SEEN_I" = 0 ] && _req="-i/--input-files"
[ -z "$OUT" ] && _req="${_req:+$_req, }-o/--output-dir"
[ -n "$_req" ] && box "Required options" "The following arguments are required: $_req"

# pydantic over the overrides (config.py:65-84, 97-103): ranges of the typed values, in the
# order of InferenceArguments' fields.
pydantic_report() {  # MODEL ERRORS(loc<TAB>message<TAB>type lines): print and exit 1
    _n=$(printf '%s' "$2" | grep -c .)
    _s="s"; [ "$_n" = 1 ] && _s=""
    {
        echo "$_n validation error$_s for $1"
        printf '%s' "$2" | awk -F "$TAB" '{ if ($1 != "") print $1; print "  " $2
            if ($3 != "path_not_file") print "    For further information visit https://errors.pydantic.dev/2.14/v/" $3 }'
    } >&2
}
_errs=$(printf '%s' "$OVR" | awk -F "$TAB" '
    function bad(k, msg, t, v) { e[k] = k "\t" msg " [type=" t ", input_value=" v ", input_type=int]\t" t }
    $1 == "guidance" && $2 + 0 > 7 { bad($1, "Input should be less than or equal to 7", "less_than_equal", $2) }
    $1 == "guidance" && $2 + 0 < 0 { bad($1, "Input should be greater than or equal to 0", "greater_than_equal", $2) }
    ($1 == "max_frames" || $1 == "context_frame_index" || $1 == "num_video_frames_per_chunk" || $1 == "num_steps") && $2 + 0 <= 0 {
        bad($1, "Input should be greater than 0", "greater_than", $2) }
    END { n = split("seed guidance max_frames context_frame_index num_video_frames_per_chunk num_steps", order, " ")
          for (i = 1; i <= n; i++) if (order[i] in e) print e[order[i]] }')
if [ -n "$_errs" ]; then pydantic_report InferenceArgumentsOverrides "$_errs$NL"; exit 1; fi
[ "${COSMOS_STANDIN_STOP_AFTER:-}" = args ] && exit 0

# --- the sample files (config.py:353-420) ------------------------------------------------
# JSON_AWK (the same flattener as cosmos_standin.sh): "path<TAB>type<TAB>value" lines.
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
# VALIDATE_AWK: InferenceArguments (config.py:311-593) over one flattened sample, with the
# command-line overrides (OVR) merged in first (config.py:374 "data | override_data"). Prints
# "loc<TAB>message<TAB>type" per error in field order, like pydantic; paths are checked from
# the sample file's folder (config.py:369-370).
VALIDATE_AWK='
function pyrepr(t, v) { return t == "string" ? "\047" v "\047" : (t == "object" ? "{...}" : v) }
function pytype(t) { return t == "string" ? "str" : (t == "object" ? "dict" : (t == "array" ? "list" : t)) }
function err(loc, msg, t, p) { out[++n] = loc "\t" msg " [type=" t ", input_value=" pyrepr(T[p], V[p]) ", input_type=" pytype(T[p]) "]\t" t }
function need(k) { if (!(k in T)) { out[++n] = k "\tField required [type=missing, input_value={...}, input_type=dict]\tmissing"; return 0 } return 1 }
function str(p) { if ((p in T) && T[p] != "string" && T[p] != "NoneType") err(p, "Input should be a valid string", "string_type", p) }
function file(p) {
    if (!(p in T) || T[p] == "NoneType") return
    if (T[p] != "string") { err(p, "Input should be a valid string", "string_type", p); return }
    if (system("test -f \"" V[p] "\"") != 0) out[++n] = p "\tPath does not point to a file [type=path_not_file, input_value=\047" V[p] "\047, input_type=str]\tpath_not_file"
}
function integer(p, lo, hi, pos) {
    if (!(p in T) || T[p] == "NoneType") return
    if (T[p] == "float" && V[p] != int0(V[p])) { err(p, "Input should be a valid integer, got a number with a fractional part", "int_from_float", p); return }
    if (T[p] == "string" && V[p] !~ /^-?[0-9]+$/) { err(p, "Input should be a valid integer, unable to parse string as an integer", "int_parsing", p); return }
    if (T[p] != "int" && T[p] != "float" && T[p] != "string") { err(p, "Input should be a valid integer", "int_type", p); return }
    if (pos && V[p] + 0 <= 0) err(p, "Input should be greater than 0", "greater_than", p)
    else if (lo != "" && V[p] + 0 < lo) err(p, "Input should be greater than or equal to " lo, "greater_than_equal", p)
    else if (hi != "" && V[p] + 0 > hi) err(p, "Input should be less than or equal to " hi, "less_than_equal", p)
}
function int0(v) { return v ~ /\.0+$/ ? v : "x" }
function boolean(p) { if ((p in T) && T[p] != "bool" && !(T[p] == "int" && (V[p] == 0 || V[p] == 1))) err(p, "Input should be a valid boolean", "bool_type", p) }
function level(p) { if ((p in T) && !(T[p] == "string" && V[p] ~ /^(very_low|low|medium|high|very_high)$/)) err(p, "Input should be \047very_low\047, \047low\047, \047medium\047, \047high\047 or \047very_high\047", "literal_error", p) }
function hint(k, cls) {
    if (!(k in T) || T[k] == "NoneType") return
    if (T[k] != "object") { err(k, "Input should be a valid dictionary or instance of " cls, "model_type", k); return }
    hints++
    file(k ".control_path")
    w = k ".control_weight"
    if (w in T) {
        if (T[w] != "int" && T[w] != "float") err(w, "Input should be a valid number, unable to parse string as a number", "float_parsing", w)
        else if (V[w] + 0 < 0) err(w, "Input should be greater than or equal to 0", "greater_than_equal", w)
        else if (V[w] + 0 > 1) err(w, "Input should be less than or equal to 1", "less_than_equal", w)
    }
    file(k ".mask_path"); str(k ".mask_prompt")
    if (k == "edge") level("edge.preset_edge_threshold")
    if (k == "vis") level("vis.preset_blur_strength")
    if (k == "seg") str("seg.control_prompt")
}
BEGIN { FS = "\t"; split("name prompt_path prompt negative_prompt seed guidance video_path max_frames context_frame_index image_context_path num_conditional_frames resolution sigma_max num_video_frames_per_chunk num_steps show_control_condition show_input keep_input_resolution edge depth vis seg guided_generation_mask guided_generation_step_threshold guided_generation_foreground_labels", KEYS, " "); for (i in KEYS) KNOWN[KEYS[i]] = 1 }
{ if ($1 != "") { T[$1] = $2; V[$1] = $3; if ($1 !~ /[.[]/) ORDER[++m] = $1 } }
END {
    if (need("name")) str("name")
    if (!("prompt" in T) && ("prompt_path" in T)) { file("prompt_path") } else if (need("prompt")) str("prompt")
    str("negative_prompt"); integer("seed", "", "", 0); integer("guidance", 0, 7, 0)
    if (need("video_path")) file("video_path")
    integer("max_frames", "", "", 1); integer("context_frame_index", "", "", 1)
    file("image_context_path")
    if ("num_conditional_frames" in T && !(T["num_conditional_frames"] == "int" && V["num_conditional_frames"] ~ /^[012]$/)) err("num_conditional_frames", "Input should be 0, 1 or 2", "literal_error", "num_conditional_frames")
    str("resolution"); str("sigma_max")
    integer("num_video_frames_per_chunk", "", "", 1); integer("num_steps", "", "", 1)
    boolean("show_control_condition"); boolean("show_input"); boolean("keep_input_resolution")
    hint("edge", "EdgeConfig"); hint("depth", "DepthConfig"); hint("vis", "BlurConfig"); hint("seg", "SegConfig")
    file("guided_generation_mask")
    for (i = 1; i <= m; i++) if (!(ORDER[i] in KNOWN)) err(ORDER[i], "Extra inputs are not permitted", "extra_forbidden", ORDER[i])
    if (n == 0 && hints == 0) out[++n] = "\tValue error, No controls provided, please provide at least one control key (edge, blur, depth, seg) [type=value_error, input_value={...}, input_type=dict]\tvalue_error"
    else if (n == 0 && ("vis" in T) && T["image_context_path"] == "string") out[++n] = "\tValue error, vis control and image_context_path are both used to transfer style. Using these modes together leads to conflicts. Please only provide one [type=value_error, input_value={...}, input_type=dict]\tvalue_error"
    for (i = 1; i <= n; i++) print out[i]
}'
# flatten_sample JSON_TEXT: the flattened sample with the overrides merged over it.
flatten_sample() {
    printf '%s\n' "$1" | awk "$JSON_AWK"
    printf '%s' "$OVR" | awk -F "$TAB" '{ t = ($1 ~ /^(seed|guidance|max_frames|context_frame_index|num_video_frames_per_chunk|num_steps|guided_generation_step_threshold)$/) ? "int" : ($2 ~ /^(True|False)$/ ? "bool" : "string"); print $1 "\t" t "\t" $2 }'
}
py_traceback() {  # EXCEPTION_LINE: an uncaught exception in the sample loading, exit 1
    {
        echo "Traceback (most recent call last):"
        echo "  File \"/workspace/examples/inference.py\", line 94, in <module>"
        echo "    main(args)"
        echo "  File \"/workspace/cosmos_transfer2/config.py\", line 402, in from_files"
        echo "    objs.extend(cls._from_file(path, override_data))"
        echo "$1"
    } >&2
    exit 1
}
if [ -z "$INPUTS" ]; then echo "Error: No inference parameter files" >&2; exit 1; fi
SAMPLES=""  # "dir<TAB>flattened json line (one per sample)" is too wide: keep files + index
NAMES=""
COUNT=0
_ifs="$IFS"; IFS="$NL"
for _file in $INPUTS; do
    IFS="$_ifs"
    [ -f "$_file" ] || py_traceback "FileNotFoundError: [Errno 2] No such file or directory: '$_file'"
    case "$_file" in
        *.json) _lines=$(tr '\n' ' ' < "$_file"; echo) ;;
        *.jsonl) _lines=$(cat "$_file") ;;
        *) py_traceback "ValueError: Unsupported file extension: .${_file##*.}" ;;
    esac
    _dir=$(dirname "$_file"); _i=0
    IFS="$NL"
    for _line in $_lines; do
        IFS="$_ifs"
        _flat=$(flatten_sample "$_line")
        case "$_flat" in *"!error$TAB"*)
            set -- $(printf '%s\n' "$_flat" | sed -n "s/^!error$TAB//p" | tr "$TAB" ' ')
            py_traceback "json.decoder.JSONDecodeError: Expecting value: line $1 column $2 (char $3)" ;;
        esac
        _errs=$(cd "$_dir" && printf '%s\n' "$_flat" | awk "$VALIDATE_AWK")
        if [ -n "$_errs" ]; then
            echo "Error validating parameters from '$_file' at line $_i" >&2
            pydantic_report InferenceArguments "$_errs$NL"
            exit 1
        fi
        _name=$(printf '%s\n' "$_flat" | awk -F "$TAB" '$1 == "name" { print $3; exit }')
        case "$NL$NAMES" in *"$NL$_name$NL"*)
            echo "Error: Inference samplename $_name is not unique" >&2; exit 1 ;;
        esac
        NAMES="$NAMES$_name$NL"
        COUNT=$((COUNT + 1))
        printf '%s\n' "$_flat" > "${TMPDIR:-/tmp}/t25standin.$$.$COUNT"
        printf '%s\n' "$_dir" > "${TMPDIR:-/tmp}/t25standin.$$.$COUNT.dir"
        _i=$((_i + 1))
        IFS="$NL"
    done
    IFS="$NL"
done
IFS="$_ifs"
trap 'rm -f "${TMPDIR:-/tmp}"/t25standin.$$.*' EXIT
[ "${COSMOS_STANDIN_STOP_AFTER:-}" = samples ] && exit 0

# --- the run --------------------------------------------------------------------------------
mkdir -p "$OUT"
CONSOLE="$OUT/console.log"
: > "$CONSOLE"
# log LEVEL FILE:LINE:FUNCTION MESSAGE: one loguru line (rank 0 only) on stdout and console.log.
log() {
    _l=$(printf '[%s|%s|%s] %s' "$(now)" "$1" "$2" "$3")
    printf '%s\n' "$_l"
    printf '%s\n' "$_l" >> "$CONSOLE"
}
# bar DESC TOTAL: a tqdm bar drawn by every rank on stderr, \r redraws, a newline at the end.
bar() {
    _i=0
    while [ "$_i" -le "$2" ]; do
        _r=0
        while [ "$_r" -lt "$NPROC" ]; do
            printf '\r%s: %3d%%|##########| %d/%d [00:%02d<00:%02d,  1.00s/it]' "$1" \
                $((_i * 100 / $2)) "$_i" "$2" "$_i" $(($2 - _i)) >&2
            _r=$((_r + 1))
        done
        [ "$_i" -eq "$2" ] && printf '\n' >&2
        pause 0.05
        _i=$((_i + 1))
    done
}
# crash EXCEPTION_LINE: a worker's uncaught exception; under torchrun with its rank prefix.
crash() {
    _t="Traceback (most recent call last):$NL  File \"/workspace/examples/inference.py\", line 78, in main$NL    inference.generate(inference_samples, output_dir=args.setup.output_dir)$NL$1"
    if [ "$NPROC" -gt 1 ]; then printf '%s\n' "$_t" | sed "s/^/[rank$RANK]: /" >&2; else printf '%s\n' "$_t" >&2; fi
    exit 1
}
CKPT_DB="cosmos_transfer2/_src/imaginaire/utils/checkpoint_db.py"
INF="cosmos_transfer2/inference.py"
PIPE="cosmos_transfer2/_src/transfer2/inference/inference_pipeline.py"
UTILS="cosmos_transfer2/_src/transfer2/inference/utils.py"
log INFO "cosmos_oss/init.py:96:_init_log_files" "Log saved to $CONSOLE"

# Download once per host cache (checkpoint_db.py:184-188, 292-298).
HF_HOME="${HF_HOME:-${HOME:-/root}/.cache/huggingface}"  # huggingface_hub's default
# Each repository is downloaded once into its own hub folder; a mark there says it is whole.
mark() { echo "$HF_HOME/hub/models--$(echo "$1" | sed 's|/|--|g')/.standin-complete"; }
download() {  # REPO NAME
    [ -f "$(mark "$1")" ] && [ "$SCENARIO" != gated ] && return 0
    log INFO "$CKPT_DB:297:download" "Downloading checkpoint $2"
    log INFO "$CKPT_DB:165:_hf_download" "uvx 'hf>=1.3.5' download $1 --repo-type model --revision main"
    if [ "$SCENARIO" = gated ] || { [ "$1" = nvidia/Cosmos-Guardrail1 ] && [ -z "${HF_TOKEN:-}" ]; }; then
        {
            echo "Cannot access gated repo for url https://huggingface.co/api/models/$1/revision/main."
            echo "Access to model $1 is restricted. You must have access to it and be authenticated to access it. Please log in."
        } >&2
        crash "subprocess.CalledProcessError: Command '['uvx', 'hf>=1.3.5', 'download', '$1', '--repo-type', 'model', '--revision', 'main']' returned non-zero exit status 1."
    fi
    bar "Fetching 4 files" 4
    mkdir -p "$(dirname "$(mark "$1")")/snapshots/main" && : > "$(mark "$1")"
}
download nvidia/Cosmos-Transfer2.5-2B "Cosmos-Transfer2.5-2B/general/edge(61f5694b)"
[ "$NO_GUARD" = 0 ] && download nvidia/Cosmos-Guardrail1 "Cosmos-Guardrail1(guardrail)"
pause 0.5
log INFO "$INF:146:__init__" "Found 1 hint keys across all samples"
printf 'model: %s\n' "$MODEL" > "$OUT/config.yaml"
log INFO "$INF:156:__init__" "Saved config to $OUT/config.yaml"
log INFO "$INF:163:generate" "Generating $COUNT samples: [$(printf '%s' "$NAMES" | awk '{ printf "%s\047%s\047", (NR > 1 ? ", " : ""), $0 }')]"

_k=1
while [ "$_k" -le "$COUNT" ]; do
    _flat="${TMPDIR:-/tmp}/t25standin.$$.$_k"
    _dir=$(cat "$_flat.dir")
    get() { awk -F "$TAB" -v p="$1" '$1 == p { print $3; exit }' "$_flat"; }
    _name=$(get name); _prompt=$(get prompt); _video=$(get video_path); _steps=$(get num_steps)
    [ -z "$_steps" ] && _steps=35
    case "$_video" in /*) ;; *) _video="$_dir/$_video" ;; esac
    log INFO "$INF:167:generate" "[$_k/$COUNT] Processing sample $_name"
    awk -F "$TAB" 'BEGIN { printf "{" } $1 !~ /[.[]/ && $1 != "" { printf "%s\"%s\": \"%s\"", n++ ? ", " : "", $1, $3 } END { print "}" }' "$_flat" > "$OUT/$_name.json"
    log INFO "$INF:208:_generate_sample" "Saved arguments to $OUT/$_name.json"
    if [ "$NO_GUARD" = 0 ]; then
        log INFO "$INF:213:_generate_sample" "Running guardrail check on prompt..."
        case "$_prompt" in *"[standin:guardrail]"*)
            log CRITICAL "$INF:217:_generate_sample" "Guardrail blocked generation. Prompt: $_prompt"
            [ "$KEEP" = 1 ] || crash "Exception: Guardrail blocked generation. Prompt: $_prompt"
            _k=$((_k + 1)); continue ;;
        esac
        log SUCCESS "$INF:223:_generate_sample" "Passed guardrail on prompt"
    else
        log WARNING "$INF:239:_generate_sample" "Guardrail checks on prompt are disabled"
    fi
    _hints=$(awk -F "$TAB" '$1 ~ /^(edge|depth|vis|seg)$/ && $2 == "object" { print $1 }' "$_flat")
    log INFO "$INF:242:_generate_sample" "Processing the following paths: {$(printf '%s' "$_hints" | awk '{ printf "%s\047%s\047: None", (NR > 1 ? ", " : ""), $0 }')}"
    # The image context (inference_pipeline.py:513-523; utils.py:329-337): a context frame
    # index reads the input video instead; the extension is only checked here, not by pydantic.
    log INFO "$PIPE:513:generate_img2world" "Processing image context if available..."
    _img=$(get image_context_path)
    [ -n "$(get context_frame_index)" ] && _img="$_video"
    if [ -z "$_img" ]; then
        log INFO "$UTILS:330:read_and_process_image_context" "No image context provided."
    else
        case "$_img" in /*) ;; *) _img="$(cd "$_dir" && pwd)/$_img" ;; esac
        log INFO "$UTILS:333:read_and_process_image_context" "Processing image context from: $_img"
        _ext=$(printf '%s' "${_img##*/}" | awk '{ sub(/^\.+/, ""); n = split($0, a, "."); print (n > 1 ? "." tolower(a[n]) : "") }')
        case "$_ext" in
            .png|.jpg|.jpeg|.mp4|.avi|.mov|.mkv|.webm) ;;
            *) crash "ValueError: Invalid image context extension: $_ext. Supported: ['.png', '.jpg', '.jpeg', '.mp4', '.avi', '.mov', '.mkv', '.webm']" ;;
        esac
    fi
    _c=1
    while [ "$_c" -le "$CHUNKS" ]; do
        case "$_prompt" in *"[standin:oom]"*) _scenario=oom ;; *) _scenario="$SCENARIO" ;; esac
        # A chunk computes a while before it fails, whatever the speed: a traceback on
        # stderr a few microseconds after a line on stdout may be stamped before it (each
        # stream is read on its own), which a real run never shows.
        case "$_scenario" in oom|nccl) sleep 0.1 ;; esac
        case "$_scenario" in
            oom) crash "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 71.19 GiB. GPU 0 has a total capacity of 79.18 GiB of which 48.84 GiB is free." ;;
            nccl) [ "$NPROC" -gt 1 ] && RANK=1
                  crash "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5" ;;
            hang) bar "Generating samples" 3; while :; do pause 1; [ "$SPEED" = 0 ] && sleep 1; done ;;
        esac
        bar "Generating samples" "$_steps"
        _c=$((_c + 1))
    done
    for _h in $_hints; do  # saved before the video guardrail runs (inference.py:306-311)
        cp "$_video" "$OUT/${_name}_control_$_h.mp4"
        log INFO "$INF:311:_generate_sample" "$_h control video saved to $OUT/${_name}_control_$_h.mp4"
    done
    if [ "$NO_GUARD" = 0 ]; then
        log INFO "$INF:319:_generate_sample" "Running guardrail check on video..."
        log SUCCESS "$INF:329:_generate_sample" "Passed guardrail on generated video"
    fi
    cp "$_video" "$OUT/$_name.mp4"
    printf '%s' "$_prompt" > "$OUT/$_name.txt"
    log SUCCESS "$INF:343:_generate_sample" "Generated video saved to $OUT/$_name.mp4"
    _k=$((_k + 1))
done
exit 0
