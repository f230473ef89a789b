"""Checks through Docker: the daemon, the image, GPUs in a container, the checkout's version."""

from __future__ import annotations

from cosmos_tui.doctor.checks_hub import check_hub_checkout
from cosmos_tui.doctor.context import PREFIX, DoctorContext, quoted
from cosmos_tui.doctor.model import CheckResult, failed, passed, skipped
from cosmos_tui.doctor.needs import CHECKOUT_REQUIREMENTS, IMAGE_REQUIREMENTS
from cosmos_tui.errors import CosmosError, DockerError
from cosmos_tui.remote.discover import CHECKOUT_SCRIPT
from cosmos_tui.remote.docker_probe import pull_image, read_image_file, run_probe
from cosmos_tui.remote.smi import parse_gpu_list

TOOLKIT_FIX = (
    "install the NVIDIA Container Toolkit on the host: sudo apt-get install -y "
    "nvidia-container-toolkit && sudo nvidia-ctk runtime configure --runtime=docker && "
    "sudo systemctl restart docker"
)


async def check_docker(ctx: DoctorContext) -> CheckResult:
    """The Docker daemon answers, and the login user may use it."""
    title = "Docker reachable and permitted"
    user = ctx.config.user or "$USER"
    try:
        version = await ctx.host.docker.version()
    except CosmosError as exc:
        text = exc.message
        if "permission denied" in text or "may not use" in text:
            fix = (
                f"sudo usermod -aG docker {user} (on the host; then log in again), or "
                f"cosmos host edit {ctx.name} --docker-sudo"
            )
        elif "docker_sudo" in text:
            fix = (
                f"echo '{user} ALL=(root) NOPASSWD: /usr/bin/docker' | sudo tee "
                "/etc/sudoers.d/cosmos (on the host)"
            )
        elif "no Docker socket" in text:
            fix = (
                "sudo systemctl start docker (on the host); if it listens elsewhere: "
                f"cosmos host edit {ctx.name} --docker-socket PATH"
            )
        else:
            fix = "sudo systemctl start docker (on the host)"
        return failed("docker", title, text, fix)
    ctx.facts["docker"] = True
    via = "sudo" if ctx.config.docker_sudo else ctx.config.docker_socket
    return passed("docker", title, f"Docker {version.version} via {via}")


async def check_image(ctx: DoctorContext) -> CheckResult:
    """The profile's image is on the host (``--fix`` pulls it)."""
    title = "Model image present"
    if not ctx.facts.get("docker"):
        return skipped("image", title, "needs Docker")
    if await ctx.host.docker.image_present(ctx.image):
        ctx.facts["image"] = True
        return passed("image", title, ctx.image)
    fix = f"cosmos doctor {ctx.name} --fix   (or on the host: docker pull {ctx.image})"
    if not ctx.fix:
        return failed("image", title, f"{ctx.image} is not on {ctx.name}", fix)
    try:
        await pull_image(ctx.host.docker, ctx.image, ctx.on_pull or (lambda _event: None))
    except DockerError as exc:
        return failed(
            "image",
            title,
            f"pulling {ctx.image} failed: {exc.message}",
            # The doctor pulls through the Engine API without registry credentials: a
            # private registry is pulled on the host, where 'docker login' applies.
            f"on the host: docker login {_registry(ctx.image)} (nvcr.io needs an NGC API "
            f"key), then docker pull {ctx.image}",
        )
    if not await ctx.host.docker.image_present(ctx.image):
        return failed("image", title, f"{ctx.image} is still missing after the pull", fix)
    ctx.facts["image"] = True
    return passed("image", title, f"{ctx.image} (pulled now)")


def _registry(image: str) -> str:
    """The registry of an image reference (Docker Hub when the first part is no host)."""
    first, slash, _rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


async def check_gpu_container(ctx: DoctorContext) -> CheckResult:
    """A container that asks for every GPU sees them (``docker run --gpus all``)."""
    title = "NVIDIA runtime: GPUs inside a container"
    if not ctx.config.gpu_request:
        return skipped("gpu_container", title, "gpu_request = false for this host")
    if not ctx.facts.get("image"):
        return skipped("gpu_container", title, "needs the model image")
    try:
        probe = await run_probe(ctx.host.docker, ctx.image, ["nvidia-smi", "-L"], all_gpus=True)
    except DockerError as exc:
        if "could not select device driver" in exc.message or "GPUs" in exc.message:
            detail = f"Docker has no NVIDIA runtime: {exc.message}"
            return failed("gpu_container", title, detail, TOOLKIT_FIX)
        return failed("gpu_container", title, exc.message, TOOLKIT_FIX)
    gpus = parse_gpu_list(probe.output)
    if probe.exit_code != 0 or not gpus:
        return failed(
            "gpu_container",
            title,
            f"'nvidia-smi -L' in a container with --gpus all saw no GPU (exit "
            f"{probe.exit_code}: {probe.output.strip()[-200:]})",
            TOOLKIT_FIX,
        )
    return passed("gpu_container", title, f"{len(gpus)} GPUs visible in a container")


_READ_CHECKOUT = (
    f'test -f "$1/$2" || {{ echo "{PREFIX}no-script"; exit 0; }}; '
    f'test -f "$1/$3" || {{ echo "{PREFIX}no-requirements"; exit 0; }}; '
    f'echo "{PREFIX}ok"; cat "$1/$3"'
)


def _requirements(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return sorted(line for line in lines if line)


async def check_checkout(ctx: DoctorContext) -> CheckResult:
    """The model checkout exists and matches the image it runs in.

    The upstream Dockerfile copies ``requirements_docker.txt`` into the image as
    ``/requirements.txt``: a checkout whose file differs needs packages the image lacks
    (a ``ModuleNotFoundError`` on the GPU).
    """
    title = "Model checkout matches the image"
    if ctx.needs.hub_weights:
        return await check_hub_checkout(ctx)
    repo = ctx.repo_dir
    result = await ctx.script(_READ_CHECKOUT, repo, CHECKOUT_SCRIPT, CHECKOUT_REQUIREMENTS)
    out = result.stdout
    if f"{PREFIX}no-script" in out or PREFIX not in out:
        return failed(
            "checkout",
            title,
            f"no cosmos-transfer1 checkout at {repo} ({CHECKOUT_SCRIPT} is missing)",
            f"git clone https://github.com/nvidia-cosmos/cosmos-transfer1 {quoted(repo)} (on "
            f"the host), or: cosmos host edit {ctx.name} --remote-repo-dir PATH",
        )
    body = out.split(f"{PREFIX}ok\n", 1)[1] if f"{PREFIX}ok\n" in out else ""
    if not ctx.facts.get("image"):
        return skipped("checkout", title, f"checkout at {repo}; the image is needed to compare")
    if f"{PREFIX}no-requirements" in out:
        return passed("checkout", title, f"{repo} (it has no {CHECKOUT_REQUIREMENTS})")
    try:
        baked = await read_image_file(ctx.host.docker, ctx.image, IMAGE_REQUIREMENTS)
    except DockerError as exc:
        return failed("checkout", title, exc.message, "sudo systemctl restart docker")
    if baked is None:
        return passed("checkout", title, f"{repo} (the image records no {IMAGE_REQUIREMENTS})")
    ours = _requirements(body)
    theirs = _requirements(baked.decode("utf-8", errors="replace"))
    if ours != theirs:
        extra = sorted(set(ours) - set(theirs))[:3]
        detail = f"{repo}/{CHECKOUT_REQUIREMENTS} differs from {IMAGE_REQUIREMENTS} in {ctx.image}"
        if extra:
            detail += f" (the checkout wants {', '.join(extra)})"
        return failed(
            "checkout",
            title,
            detail,
            f"rebuild the image from the checkout: cd {quoted(repo)} && docker build -t "
            f"{ctx.image} .   (or check out the commit the image was built from)",
        )
    return passed("checkout", title, f"{repo} matches {ctx.image}")
