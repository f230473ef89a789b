"""Reading a container's log in tests through the one reader the tool uses.

``DockerClient.log_frames`` keeps Docker's nanosecond timestamps; resuming from a line
uses them exactly (a float of seconds since the epoch loses the nanoseconds, so a resume
could start after the line it meant to repeat).
"""

from __future__ import annotations

from dataclasses import dataclass

from cosmos_tui.engine.logs import DockerLogDecoder, clean_lines, since_param
from cosmos_tui.remote.docker import DockerClient


@dataclass(frozen=True)
class Line:
    """One display line of a container's output with Docker's timestamp."""

    ts_ns: int | None
    text: str

    @property
    def since(self) -> str:
        """Docker's ``since`` that resumes at this line (inclusive)."""
        assert self.ts_ns is not None
        return since_param(self.ts_ns)


async def read_lines(
    docker: DockerClient, container_id: str, since: str | None = None, follow: bool = True
):  # type: ignore[no-untyped-def]
    """Yield the display lines of a container's log, as the run log follower sees them."""
    decoder = DockerLogDecoder()
    async for frames in docker.log_frames(container_id, since=since, follow=follow):
        for frame in frames:
            for raw in decoder.feed(frame):
                for text in clean_lines(raw.data):
                    yield Line(raw.ts_ns, text)
    for raw in decoder.flush():
        for text in clean_lines(raw.data):
            yield Line(raw.ts_ns, text)


async def all_lines(
    docker: DockerClient, container_id: str, since: str | None = None, follow: bool = True
) -> list[Line]:
    """Return every display line of a container's log (see :func:`read_lines`)."""
    return [line async for line in read_lines(docker, container_id, since, follow)]
