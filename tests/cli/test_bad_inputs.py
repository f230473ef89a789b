"""Bad inputs across every command and config key: a clear error, never a traceback.

Each case runs one ``cosmos`` command in-process against a workspace that already holds
prompts and runs, and checks the exit status (2 for usage errors, 1 for the rest), a
fragment of the message, that no traceback was printed, and that no row of any table
was added, changed or removed (a checksum of every table before and after).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cosmos_tui.cli import cli
from tests.conftest import write_video

BASE_CONFIG = "# bad-input table\n[defaults]\nnum_steps = 35\n"
HOST = '[[hosts]]\nname = "gpu1"\nhostname = "127.0.0.1"\nport = 9\n'
FAST = "[timeouts]\nconnect = 0.5\ncommand = 2.0\n"


@dataclass(frozen=True)
class Case:
    """One bad input: argv (with {placeholders}), exit status, message fragment."""

    args: tuple[str, ...]
    code: int
    fragment: str
    config: str | None = None  # the config file's text for this case (default BASE)
    env: tuple[tuple[str, str], ...] = ()
    stdin: str | None = None


def c(*args: str, code: int = 1, fragment: str, **extra: object) -> Case:
    return Case(tuple(args), code, fragment, **extra)  # type: ignore[arg-type]


def host_config(body: str) -> str:
    """A config with one host whose table ends with ``body``."""
    return BASE_CONFIG + FAST + HOST + body + "\n"


def bad_key(section: str, key: str, value: str, fragment: str) -> Case:
    """``list runs`` under a config whose [section] sets ``key = value``."""
    return c("list", "runs", fragment=fragment, config=f"[{section}]\n{key} = {value}\n")


CASES: list[Case] = [
    # ---- create prompt -------------------------------------------------------------
    c("create", "prompt", "x", "{MISSING}", fragment="does not exist"),
    c("create", "prompt", "x", "{EMPTY}", fragment="has no color.mp4"),
    c("create", "prompt", "x", "{MP4}", fragment="is a file, not a folder"),
    c("create", "prompt", "x", "{NOTVIDEO}", fragment="not an MP4"),
    c("create", "prompt", "x", "{ZERO}", fragment="not an MP4"),
    c("create", "prompt", "   ", "{VIDEO}", fragment="prompt text is empty"),
    c("create", "prompt", "", "{VIDEO}", fragment="prompt text is empty"),
    c("create", "prompt", "{LONG}", "{VIDEO}", fragment="at most 10000"),
    c("create", "prompt", "x", "{VIDEO}", "--name", "{LONG}", fragment="longer than 200"),
    c("create", "prompt", "x", "{VIDEO}", "--negative", "{LONG}", fragment="negative prompt"),
    c("create", "prompt", "x", fragment="Missing argument", code=2),
    c("create", "prompt", fragment="Missing argument", code=2),
    c("create", "prompt", "x", "{VIDEO}", "--bogus", fragment="No such option", code=2),
    c("create", "nothing", fragment="No such command", code=2),
    # ---- create run: ids and every parameter ---------------------------------------
    c("create", "run", "ps_ffffffffffff", fragment="ps_ffffffffffff"),
    c("create", "run", "xyz", fragment="is not an id"),
    c("create", "run", "", fragment="is not an id"),
    c("create", "run", "{R}", fragment="prompt"),
    c("create", "run", "ps_", fragment="is not an id"),
    c("create", "run", "{P}", "--priority", "1e20", code=2, fragment="-1000000 to 1000000"),
    c("create", "run", "{P}", "--priority", "2^63", code=2, fragment="not a whole number"),
    c("create", "run", "{P}", "--priority", "9223372036854775808", code=2, fragment="out of range"),
    c(
        "create",
        "run",
        "{P}",
        "--priority",
        "-9223372036854775809",
        code=2,
        fragment="out of range",
    ),
    c("create", "run", "{P}", "--priority", "1000001", code=2, fragment="1000000"),
    c("create", "run", "{P}", "--priority", "", code=2, fragment="not a whole number"),
    c("create", "run", "{P}", "--priority", "nan", code=2, fragment="not a whole number"),
    c("create", "run", "{P}", "--steps", "0", fragment="num_steps is 0"),
    c("create", "run", "{P}", "--steps", "1001", fragment="between 1 and 1000"),
    c("create", "run", "{P}", "--steps", "99999999999999999999", fragment="between 1 and 1000"),
    c("create", "run", "{P}", "--steps", "1e20", code=2, fragment="from 1 to 1000"),
    c("create", "run", "{P}", "--steps", "3.5", code=2, fragment="not a whole number"),
    c("create", "run", "{P}", "--seed", "-1", fragment="between 0 and 4294967295"),
    c("create", "run", "{P}", "--seed", "4294967296", fragment="between 0 and 4294967295"),
    c("create", "run", "{P}", "--seed", "0x10", code=2, fragment="not a whole number"),
    c("create", "run", "{P}", "--fps", "0", fragment="fps is 0"),
    c("create", "run", "{P}", "--fps", "241", fragment="between 1 and 240"),
    c("create", "run", "{P}", "--gpus", "0", fragment="num_gpus is 0"),
    c("create", "run", "{P}", "--gpus", "65", fragment="between 1 and 64"),
    c("create", "run", "{P}", "--gpus", "-2", fragment="between 1 and 64"),
    c("create", "run", "{P}", "--guidance", "nan", code=2, fragment="not a finite number"),
    c("create", "run", "{P}", "--guidance", "inf", code=2, fragment="not a finite number"),
    c("create", "run", "{P}", "--guidance", "101", fragment="between 0 and 100"),
    c("create", "run", "{P}", "--guidance", "-1", fragment="between 0 and 100"),
    c("create", "run", "{P}", "--guidance", "lots", code=2, fragment="not a number"),
    c("create", "run", "{P}", "--sigma-max", "-5", fragment="between 0 and 1000"),
    c("create", "run", "{P}", "--sigma-max", "1e400", code=2, fragment="not a finite"),
    c("create", "run", "{P}", "--weights", "1.7", "0", "0", "0", fragment="vis weight is 1.7"),
    c("create", "run", "{P}", "--weights", "0", "0", "0", "0", fragment="all control weights"),
    c("create", "run", "{P}", "--weights", "0.5", "-0.2", "0", "0", fragment="edge weight"),
    c("create", "run", "{P}", "--weights", "nan", "0", "0", "0", code=2, fragment="finite"),
    c("create", "run", "{P}", "--weights", "0.5", code=2, fragment="requires 4 arguments"),
    c("create", "run", "{P}", "--blur", "extreme", code=2, fragment="'extreme' is not one of"),
    c("create", "run", "{P}", "--canny", "", code=2, fragment="is not one of"),
    c("create", "run", "{P}", "--negative", "{LONG}", fragment="negative prompt"),
    # ---- list, show, search, rate, delete ------------------------------------------
    c("list", "things", code=2, fragment="'things' is not one of"),
    c("list", "runs", "--state", "done", code=2, fragment="'done' is not one of"),
    c("list", "runs", "--type", "video", code=2, fragment="is not one of"),
    c("list", "runs", "--rating", "6", code=2, fragment="1<=x<=5"),
    c("list", "runs", "--rating", "0", code=2, fragment="1<=x<=5"),
    c("list", "runs", "--limit", "0", code=2, fragment="1<=x<=10000"),
    c("list", "runs", "--limit", "10001", code=2, fragment="1<=x<=10000"),
    c("list", "runs", "--offset", "-1", code=2, fragment="0<=x<=1000000000"),
    c("list", "runs", "--offset", "99999999999999999999", code=2, fragment="0<=x<=1000000000"),
    c("list", "prompts", "--offset", "9223372036854775808", code=2, fragment="0<=x<=1000000000"),
    c("list", "runs", "--since", "2026-01-01T25:00", code=2, fragment="not a usable date"),
    c("list", "runs", "--since", "yesterday", code=2, fragment="not a usable date"),
    c("list", "runs", "--since", "99999999999d", code=2, fragment="not a usable date"),
    c("list", "runs", "--until", "2026-13-45", code=2, fragment="not a usable date"),
    c("list", "runs", "--prompt", "nope", fragment="is not an id"),
    c("list", "prompts", "--state", "queued", fragment="filter runs"),
    c("list", "prompts", "--rating", "3", fragment="filter runs"),
    c("show", "ps_ffffffffffff", fragment="ps_ffffffffffff"),
    c("show", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("show", "../../etc/passwd", fragment="is not an id"),
    c("show", "\x1b]0;pwned\x07", fragment="\\e]0;pwned\\x07"),
    c("show", fragment="Missing argument", code=2),
    c("search", "x", "--limit", "0", code=2, fragment="1<=x<=1000"),
    c("search", "x", "--limit", "many", code=2, fragment="not a valid integer"),
    c("rate", "{R}", "6", code=2, fragment="0<=x<=5"),
    c("rate", "{R}", "-1", code=2, fragment="0<=x<=5"),
    c("rate", "{R}", "five", code=2, fragment="not a valid integer"),
    c("rate", "rs_ffffffffffff", "3", fragment="rs_ffffffffffff"),
    c("rate", "{P}", "3", fragment="run"),
    c("delete", "rs_ffffffffffff", "--yes", fragment="rs_ffffffffffff"),
    c("delete", "{R}", fragment="not confirmed", stdin=""),
    c("delete", "{R}", fragment="nothing deleted", stdin="n\n"),
    # ---- config: the file itself ----------------------------------------------------
    c("list", "runs", fragment="not valid TOML", config="[defaults\nnum_steps = 3\n"),
    c("list", "runs", fragment="unknown section or key 'bogus'", config="bogus = 1\n"),
    c("list", "runs", fragment="unknown key 'num_stepz'", config="[defaults]\nnum_stepz = 3\n"),
    c("list", "runs", fragment="must be a table", config="defaults = 3\n"),
    c("list", "runs", fragment="not UTF-8", config="\udcff"),
    c("list", "runs", code=2, fragment="is a directory", config="<DIR>"),
    c("list", "runs", fragment="does not exist", config="<MISSING>"),
    # ---- config: every section's keys -----------------------------------------------
    bad_key("defaults", "num_steps", "0", "num_steps is 0"),
    bad_key("defaults", "num_steps", '"many"', "must be int"),
    bad_key("defaults", "vis_weight", "2.0", "between 0 and 1"),
    bad_key("defaults", "blur_strength", '"extreme"', "must be one of"),
    bad_key("defaults", "canny_threshold", "3", "must be str"),
    bad_key("defaults", "seed", "-1", "seed is -1"),
    bad_key("defaults", "fps", "0", "fps is 0"),
    bad_key("defaults", "guidance", "nan", "finite number"),
    bad_key("defaults", "sigma_max", "inf", "finite number"),
    bad_key("defaults", "num_gpus", "0", "num_gpus is 0"),
    bad_key("timeouts", "connect", "0", "greater than 0"),
    bad_key("timeouts", "command", "-1", "greater than 0"),
    bad_key("timeouts", "run", '"4h"', "must be float"),
    bad_key("timeouts", "cancel_grace", "-1", "at least 0"),
    bad_key("timeouts", "keepalive", "0", "greater than 0"),
    bad_key("retry", "max_attempts", "0", "at least 1"),
    bad_key("retry", "backoff_base", "0", "greater than 0"),
    bad_key("retry", "backoff_max", "-3", "greater than 0"),
    bad_key("batching", "enabled", '"yes"', "must be bool"),
    bad_key("batching", "max_size", "0", "at least 1"),
    bad_key("alerts", "temperature_c", "200", "between 0 and 150"),
    bad_key("alerts", "memory_headroom_mib", "-1", "at least 0"),
    bad_key("alerts", "idle_minutes", "0", "greater than 0"),
    bad_key("ui", "log_buffer_lines", "10", "at least 100"),
    bad_key("ui", "gpu_interval_ms", "1", "at least 100"),
    bad_key("ui", "page_size", "0", "at least 1"),
    bad_key("ui", "notifications", '"on"', "must be bool"),
    bad_key("paths", "data_dir", "5", "must be str"),
    bad_key("keymap", "quit", "5", "must be a string"),
    bad_key("profiles.transfer1", "script", "5", "must be str"),
    bad_key("profiles.transfer1", "extra_args", '"--x"', "list of strings"),
    # ---- config: hosts ----------------------------------------------------------------
    c("status", fragment="'hosts' must be an array", config="hosts = 3\n"),
    c("status", fragment="missing required key(s): hostname", config='[[hosts]]\nname = "a"\n'),
    c(
        "status",
        fragment="'hosts[0].name' is empty",
        config='[[hosts]]\nname = ""\nhostname = "h"\n',
    ),
    c(
        "status",
        fragment="'hosts[0].hostname' is empty",
        config=host_config('hostname = " "').replace('hostname = "127.0.0.1"\n', ""),
    ),
    c("status", fragment="two hosts are named 'gpu1'", config=host_config(HOST)),
    c(
        "status",
        fragment="'gpu1.port' is 0",
        config=host_config("").replace("port = 9", "port = 0"),
    ),
    c(
        "status",
        fragment="between 1 and 65535",
        config=host_config("").replace("port = 9", "port = 70000"),
    ),
    c("status", fragment="'gpu1.gpu_limit' is 0", config=host_config("gpu_limit = 0")),
    c("status", fragment="'gpu1.max_runs' is 0", config=host_config("max_runs = 0")),
    c("status", fragment="'gpu1.shm_size' is 'lots'", config=host_config('shm_size = "lots"')),
    c("status", fragment="'gpu1.shm_size' is '0g'", config=host_config('shm_size = "0g"')),
    c("status", fragment="remote_tool_dir' is empty", config=host_config('remote_tool_dir = ""')),
    c("status", fragment="docker_image' is empty", config=host_config('docker_image = ""')),
    c("status", fragment="remote_repo_dir' is empty", config=host_config('remote_repo_dir = " "')),
    c("status", fragment="checkpoints_dir' is empty", config=host_config('checkpoints_dir = ""')),
    c("status", fragment="docker_socket' is empty", config=host_config('docker_socket = ""')),
    c("status", fragment="table of strings", config=host_config("env = { X = 1 }")),
    c(
        "status",
        fragment="variable name 'BAD-NAME'",
        config=host_config('env = { "BAD-NAME" = "1" }'),
    ),
    c("status", fragment="unknown key 'gpus'", config=host_config("gpus = 2")),
    c(
        "status",
        fragment="'hosts[0].docker_sudo' must be bool",
        config=host_config('docker_sudo = "yes"'),
    ),
    c("status", "gpu9", fragment="no host named 'gpu9'", config=host_config("")),
    c("status", fragment="no GPU hosts are configured; add one with 'cosmos host add NAME"),
    # ---- config: environment overrides -------------------------------------------------
    c(
        "list",
        "runs",
        fragment="COSMOS_DEFAULTS__NUM_STEPS",
        env=(("COSMOS_DEFAULTS__NUM_STEPS", "abc"),),
    ),
    c("list", "runs", fragment="COSMOS_UI__PAGE_SIZE", env=(("COSMOS_UI__PAGE_SIZE", "0"),)),
    c("list", "runs", fragment="COSMOS_HOSTS__NAME", env=(("COSMOS_HOSTS__NAME", "x"),)),
    c("list", "runs", fragment="COSMOS_NOPE__X", env=(("COSMOS_NOPE__X", "1"),)),
    c("list", "runs", fragment="cannot create the database", env=(("COSMOS_DATA_DIR", "{MP4}"),)),
    # ---- config set -------------------------------------------------------------------
    c("config", "set", "defaults.num_stepz", "3", fragment="unknown key 'num_stepz'"),
    c("config", "set", "defaults.vis_weight", "1.7", fragment="between 0 and 1"),
    c("config", "set", "nothing", "3", fragment="dotted key"),
    c("config", "set", "defaults..x", "3", fragment="dotted key"),
    c("config", "set", "hosts.gpu9.user", "me", fragment="no host named 'gpu9'"),
    c("config", "set", "hosts.gpu1", "me", fragment="hosts.NAME.KEY", config=host_config("")),
    c("config", "set", "defaults.num_steps.x", "3", fragment="is a value, not a table"),
    c("config", "set", "hosts.gpu1.shm_size", "lots", fragment="shm_size", config=host_config("")),
    c(
        "config",
        "set",
        "hosts.gpu1.docker_image",
        '""',
        fragment="docker_image' is empty",
        config=host_config(""),
    ),
    c("config", "set", "timeouts.run", "-1", fragment="greater than 0"),
    c("config", "set", "defaults.num_steps", fragment="Missing argument", code=2),
    c("config", "init", fragment="already exists"),
    c("config", "show", "--bogus", code=2, fragment="No such option"),
    # ---- queue, stats ---------------------------------------------------------------
    c("queue", "up", "{R}", "0", code=2, fragment="x>=1"),
    c("queue", "down", "{R}", "-3", code=2, fragment="x>=1"),
    c("queue", "up", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("queue", "cancel", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("queue", "cancel", "{P}", fragment="run"),
    c("queue", "cancel", code=2, fragment="Missing argument"),
    c("queue", "nothing", code=2, fragment="No such command"),
    c("queue", "run", "--until-idle", fragment="no GPU hosts are configured"),
    c("stats", "--since", "last week", code=2, fragment="not a usable date"),
    # ---- upscale, enhance -------------------------------------------------------------
    c("upscale", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("upscale", "{MISSING}/clip.mp4", fragment="clip.mp4"),
    c("upscale", "{NOTVIDEO}/color.mp4", fragment="not an MP4"),
    c("upscale", "{R}", fragment="only a completed run"),
    c("upscale", "{MP4}", "--weight", "1.7", fragment="upscale weight"),
    c("upscale", "{MP4}", "--weight", "nan", code=2, fragment="finite"),
    c("upscale", "{MP4}", "--priority", "2^63", code=2, fragment="-1000000 to 1000000"),
    c("upscale", "{MP4}", "--prompt", "--prompt-text", "x", fragment="not both"),
    c("enhance", "ps_ffffffffffff", fragment="ps_ffffffffffff"),
    c("enhance", "{P2}", "--force", fragment="--overwrite"),
    c("enhance", "{P}", "--overwrite", fragment="--force"),
    c("enhance", "{P2}", "--priority", "1e20", code=2, fragment="not a whole number"),
    c("enhance", code=2, fragment="Missing argument"),
    # ---- verify -----------------------------------------------------------------------
    c("verify", "--no-hosts", "--search", "{MISSING}", code=2, fragment="does not exist"),
    c("verify", "--no-hosts", "--search", "{MP4}", code=2, fragment="is a file"),
    # ---- inference, logs, cancel, worker -----------------------------------------------
    c("inference", "{P}", "--detach", fragment="no GPU hosts are configured"),
    c(
        "inference",
        "{P}",
        "--host",
        "gpu9",
        fragment="no host named 'gpu9'",
        config=host_config(""),
    ),
    c("inference", "{P}", "--priority", "1e20", code=2, fragment="1000000"),
    c("inference", "{P}", "--steps", "0", fragment="num_steps is 0", config=host_config("")),
    c("inference", "ps_ffffffffffff", fragment="ps_ffffffffffff", config=host_config("")),
    c(
        "inference",
        "{R}",
        "--steps",
        "20",
        fragment="parameter flags apply to new runs",
        config=host_config(""),
    ),
    c("inference", code=2, fragment="Missing argument"),
    c("logs", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("logs", "{R}", "--tail", "-1", code=2, fragment="x>=0"),
    c("cancel", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    c("worker", "rs_ffffffffffff", fragment="rs_ffffffffffff"),
    # ---- hosts, demo, tui ----------------------------------------------------------------
    c("host", "trust", "gpu9", fragment="no host named 'gpu9'", config=host_config("")),
    c("host", "add", code=1, fragment="give the host a NAME"),
    c("demo", "--gpus", "0", code=2, fragment="1<=x<=16"),
    c("demo", "--gpus", "17", code=2, fragment="1<=x<=16"),
    c("demo", "--speed", "0", code=2, fragment="0.1<=x<=1000"),
    c("demo", "--oom-rate", "1.5", code=2, fragment="0.0<=x<=1.0"),
    c("demo", "--workspace", "{MP4}", code=2, fragment="is a file"),
    c("tui", "--bogus", code=2, fragment="No such option"),
    c("--config", "{EMPTY}", "list", "runs", code=2, fragment="is a directory"),
    c("bogus", code=2, fragment="No such command"),
    # ---- host keys added by later work (hostile hosts, GPU health, Ray, profiles) ------
    c(
        "list",
        "runs",
        fragment="'hosts[0].identity_file' must be str",
        config=host_config("identity_file = 5"),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].known_hosts' must be str",
        config=host_config('known_hosts = ["x"]'),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].gpu_exclude' must be a list of strings",
        config=host_config('gpu_exclude = "1"'),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].gpu_include' must be a list of strings",
        config=host_config("gpu_include = [1]"),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].gpu_mig' must be bool",
        config=host_config('gpu_mig = "yes"'),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].hf_cache_dir' must be str",
        config=host_config("hf_cache_dir = 3"),
    ),
    c(
        "list",
        "runs",
        fragment="give a size such as '16g'",
        config=host_config('max_output_size = "lots"'),
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].ipc_host' must be bool",
        config=host_config('ipc_host = "yes"'),
    ),
    c(
        "list",
        "runs",
        fragment="container_user' is 'bad user'; give a user or uid",
        config=host_config('container_user = "bad user"'),
    ),
    bad_key("timeouts", "stall", "-1", "it must be at least 0"),
    c(
        "list",
        "runs",
        fragment='the only kind is "ray"',
        config='[[clusters]]\nname = "c"\nkind = "slurm"\n',
    ),
    c(
        "list",
        "runs",
        fragment="'profiles.transfer2_5.token_env' must be str",
        config="[profiles.transfer2_5]\ntoken_env = 5\n",
    ),
    c(
        "list",
        "runs",
        fragment="'hosts[0].gpu_request' must be bool",
        config=host_config("gpu_request = -2"),
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].address' must be str",
        config='[[clusters]]\nname = "c"\naddress = 5\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].shared_dir' must be str",
        config='[[clusters]]\nname = "c"\naddress = "http://h:8265"\nshared_dir = 7\n',
    ),
    c(
        "list",
        "runs",
        fragment="is missing required key(s): name",
        config='[[clusters]]\naddress = "http://h:8265"\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].ssh_host' must be str",
        config='[[clusters]]\nname = "c"\nssh_host = 5\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].node_hosts' names 'nope' for node 10.0.0.5, which is not a "
        "[[hosts]] name",
        config='[[clusters]]\nname = "c"\nnode_hosts = { "10.0.0.5" = "nope" }\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].shared_dir' is empty: runs are then staged over SSH to the "
        "node Ray runs them on, which needs 'node_hosts'",
        config='[[clusters]]\nname = "c"\nshared_dir = ""\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].node_hosts' must be a table of strings",
        config='[[clusters]]\nname = "c"\nnode_hosts = { "10.0.0.5" = 3 }\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].dashboard_port' is 0; give a TCP port",
        config='[[clusters]]\nname = "c"\ndashboard_port = 0\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].dashboard_port' is 70000",
        config='[[clusters]]\nname = "c"\ndashboard_port = 70000\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].resources' must be a table of strings",
        config='[[clusters]]\nname = "c"\nresources = "x"\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].python' is empty",
        config='[[clusters]]\nname = "c"\npython = ""\n',
    ),
    c(
        "list",
        "runs",
        fragment="'clusters[0].pending_timeout' is -5; give a number of seconds",
        config='[[clusters]]\nname = "c"\npending_timeout = -5\n',
    ),
    bad_key("paths", "outputs_dir", "5", "'paths.outputs_dir' must be str"),
    bad_key("paths", "inputs_dir", "[]", "'paths.inputs_dir' must be str"),
    bad_key("profiles.x", "image", "5", "'profiles.x.image' must be str"),
    bad_key("profiles.cosmos3", "entry_point", "5", "'profiles.cosmos3.entry_point' must be str"),
    bad_key("profiles.cosmos3", "repo_dir", "5", "'profiles.cosmos3.repo_dir' must be str"),
    bad_key("profiles.cosmos3", "token_file", "5", "'profiles.cosmos3.token_file' must be str"),
    bad_key("timeouts", "stall_action", '"explode"', "must be one of alert, cancel"),
    bad_key("ui", "theme", "5", "'ui.theme' must be str"),
    bad_key("ui", "image_protocol", '"braille"', "must be one of auto, kitty"),
    # ---- commands added by later work -------------------------------------------------
    c("diagnose", "{MISSING}", fragment="does not exist; give the path of a log file"),
    c("diagnose", "{VIDEO}", fragment="is a folder; give the path of a log file"),
    c("diagnose", "{MP4}", "--exit-code", "x", code=2, fragment="is not a valid integer"),
    c("doctor", "nohost", fragment="no host named 'nohost'", config=host_config("")),
    c("inspect", "{MISSING}", fragment="does not exist; give a folder that holds color.mp4"),
    c("prepare", "{MISSING}", fragment="does not exist; give the folder of rendered frames"),
    c("reconcile", "--host", "gpu1", code=2, fragment="No such option"),
    c("host", "prune", "nohost", fragment="no host named 'nohost'", config=host_config("")),
    c(
        "host",
        "edit",
        "nohost",
        "--port",
        "22",
        fragment="no host named 'nohost'",
        config=host_config(""),
    ),
    c("host", "remove", "nohost", fragment="no host named 'nohost'", config=host_config("")),
    c("host", "list", "--bogus", code=2, fragment="No such option"),
]


def checksum(db: Path) -> dict[str, str]:
    """A digest of every row of every table (a change, an insert or a delete shows)."""
    connection = sqlite3.connect(db)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        digests = {}
        for table in sorted(tables):
            rows = connection.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
            digests[table] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()
        return digests
    finally:
        connection.close()


class Workspace:
    """A workspace with prompts and a queued run, shared by the table's cases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config.toml"
        self.data = root / "data"
        self.runner = CliRunner()
        self.values: dict[str, str] = {}

    def invoke(
        self, args: list[str], config: str | None = None, env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:  # fmt: skip
        config_path = self.config
        if config == "<DIR>":
            config_path = self.root / "a-folder"
            config_path.mkdir(exist_ok=True)
        elif config == "<MISSING>":
            config_path = self.root / "missing.toml"
        elif config is not None and "\udcff" in config:
            self.config.write_bytes(b"[ui]\ntheme = '\xff'\n")
        else:
            self.config.write_text(config or BASE_CONFIG, encoding="utf-8")
        environment = {"COSMOS_CONFIG": str(config_path), "COSMOS_DATA_DIR": str(self.data)}
        environment.update(env or {})
        return self.runner.invoke(cli, args, input=stdin, env=environment)

    def ok(self, *args: str) -> str:
        result = self.invoke(list(args))
        assert result.exit_code == 0, result.output
        return result.stdout.strip()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("bad-inputs")
    saved = {k: v for k, v in os.environ.items() if k.startswith("COSMOS_")}
    for name in saved:
        del os.environ[name]
    try:
        ws = Workspace(root)
        video = root / "videos" / "good"
        write_video(video / "color.mp4")
        empty = root / "videos" / "empty"
        empty.mkdir(parents=True)
        not_video = root / "videos" / "text"
        not_video.mkdir(parents=True)
        (not_video / "color.mp4").write_text("hello, not a video\n" * 10)
        zero = root / "videos" / "zero"
        zero.mkdir(parents=True)
        (zero / "color.mp4").write_bytes(b"")
        prompt = ws.ok("create", "prompt", "a lake at dawn", str(video), "--name", "lake")
        fresh = ws.ok("create", "prompt", "a road", str(video))
        run = ws.ok("create", "run", prompt)
        ws.values = {
            "P": prompt, "P2": fresh, "R": run, "VIDEO": str(video), "EMPTY": str(empty),
            "NOTVIDEO": str(not_video), "ZERO": str(zero), "MP4": str(video / "color.mp4"),
            "MISSING": str(root / "missing"), "LONG": "x" * 10_001,
        }  # fmt: skip
        yield ws
    finally:
        os.environ.update(saved)


def test_the_table_has_over_100_distinct_inputs() -> None:
    keys = {(case.args, case.config, case.env, case.stdin) for case in CASES}
    assert len(keys) == len(CASES) >= 100, len(keys)


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{i:03d}-{'_'.join(c.args)[:40]}" for i, c in enumerate(CASES)]
)
def test_bad_input(space: Workspace, case: Case) -> None:
    args = [arg.format(**space.values) if "{" in arg else arg for arg in case.args]
    before = checksum(space.data / "cosmos.db")
    env = {name: value.format(**space.values) for name, value in case.env}
    result = space.invoke(args, case.config, env, case.stdin)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert result.exit_code == case.code, output
    assert case.fragment.format(**space.values) in output, output
    if case.code == 1 and case.stdin is None and "nothing deleted" not in case.fragment:
        error_lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(error_lines) == 1 and error_lines[0].startswith("error: "), result.stderr
    assert "\x1b" not in output and "\u202e" not in output
    assert checksum(space.data / "cosmos.db") == before, "rows changed"
