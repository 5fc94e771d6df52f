"""Benchmark: the default DAG on a data set the size of the real Speech Commands v0.02.

Builds a stand-in archive in the v0.02 layout (105,829 one-second clips of the 35 words with the
real per-word counts, ~2,600 speakers with ``<speaker>_nohash_<take>.wav`` names, about 10% of
clips shorter than a second, ``_background_noise_/`` with six long recordings, LICENSE, README.md,
validation_list.txt and testing_list.txt) and the official test set's layout (the ten words,
``_unknown_/``, ``_silence_/``: 4,890 clips), serves both from 127.0.0.1, and runs the repository's
default DAG on them in a fresh copy of the project with ``data.source: url`` and
``data.test_set: official``. The clips are synthetic (tones over a noise floor; the content does
not change the cost of anything measured here).

Prints, per stage (``dvc repro --single-item``, so each figure includes DVC hashing and caching
the outputs): wall time, peak RSS (the largest process, as the kernel counts it: file pages mapped
from the memory-mapped arrays included) and the largest anonymous memory seen (sampled every
0.2 s: what a process really holds), bytes written (the process tree's block writes, temporaries
included), the outputs' size and the DVC cache's growth. Then a no-op ``dvc repro`` and
``dvc status`` against ``dvc version``; the disk taken by workspace and cache (hardlinked files
counted once) against archive + features; ``dvc push`` to a local remote and ``dvc pull`` into a
fresh clone, with object counts.

    python -m bench.scale                # the full size: ~12 min on 2 quiet cores (2 to build
                                         # the archive)
    python -m bench.scale --clips 3000   # a quick check of the script itself

Everything goes under ``--work`` (default /tmp/kws-scale), deleted at the end unless ``--keep``;
the generated archives are kept in ``--work``/archives and reused by the next run of the same size.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import REPO
from pipeline.core.audio import encode_pcm16
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.core.schema import read_yaml
from pipeline.data.split import which_set

# Clips per word in speech_commands_v0.02.tar.gz (105,829 in all).
V2_COUNTS = {
    "backward": 1664, "bed": 2014, "bird": 2064, "cat": 2031, "dog": 2128, "down": 3917,
    "eight": 3787, "five": 4052, "follow": 1579, "forward": 1557, "four": 3728, "go": 3880,
    "happy": 2054, "house": 2113, "learn": 1575, "left": 3801, "marvin": 2100, "nine": 3934,
    "no": 3941, "off": 3745, "on": 3845, "one": 3890, "right": 3778, "seven": 3998, "sheila": 2022,
    "six": 3860, "stop": 3872, "three": 3727, "tree": 1759, "two": 3880, "up": 3723, "visual": 1592,
    "wow": 2123, "yes": 4044, "zero": 4052,
}  # fmt: skip
V2_TOTAL = 105_829
NOISES = {
    "white_noise": 61,
    "pink_noise": 61,
    "brown_noise": 61,
    "doing_the_dishes": 95,
    "exercise_bike": 61,
    "dude_miaowing": 62,
}  # seconds
WANTED = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
OFFICIAL_TEST_CLIPS = 4890
RATE = 16000
STAGES = [
    "download",
    "split",
    "featurize",
    "train",
    "evaluate",
    "freeze",
    "synthesize_stream",
    "stream_eval",
]
STAGE_OUTS = {
    "download": ["data/raw"],
    "split": ["data/split"],
    "featurize": ["data/features"],
    "train": ["models/keras"],
    "evaluate": [],
    "freeze": ["models/export"],
    "synthesize_stream": ["data/stream"],
    "stream_eval": [],
}


# ------------------------------------------------------------------ the stand-in archives


class ClipMaker:
    """Cheap, varied 16-bit clips: a word's two tones at a speaker's pitch over a noise floor
    (tone bursts are cached per word, pitch and length, so a clip costs a slice and an add)."""

    BURSTS = (4800, 6400, 8000, 9600)

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.floors = [self.rng.normal(0, 0.004, RATE * 2).astype(np.float32) for _ in range(64)]
        self._tones: dict = {}

    def _tone(self, word: str, pitch: int, burst: int) -> np.ndarray:
        key = (word, pitch, burst)
        if key not in self._tones:
            digest = int(hashlib.md5(word.encode()).hexdigest(), 16)
            f1, f2 = 300 + (digest % 23) * 120, 700 + ((digest // 23) % 19) * 160
            shift = 1.0 + 0.04 * (pitch - 3)
            t = np.arange(burst) / RATE
            tone = 0.3 * np.sin(2 * np.pi * f1 * shift * t) + 0.2 * np.sin(
                2 * np.pi * f2 * shift * t
            )
            self._tones[key] = (np.hanning(burst) * tone).astype(np.float32)
        return self._tones[key]

    def clip(self, word: str, speaker: int, length: int) -> np.ndarray:
        start = int(self.rng.integers(0, RATE * 2 - length))
        audio = self.floors[int(self.rng.integers(len(self.floors)))][start : start + length].copy()
        tone = self._tone(word, speaker % 7, min(length, self.BURSTS[int(self.rng.integers(4))]))
        onset = int(self.rng.integers(0, length - len(tone) + 1))
        audio[onset : onset + len(tone)] += tone * np.float32(self.rng.uniform(0.2, 1.0))
        return np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")

    def length(self) -> int:
        """About 10% of v0.02's clips are shorter than one second."""
        return RATE if self.rng.uniform() > 0.1 else int(self.rng.integers(RATE // 2, RATE))


def speaker_ids(count: int, salt: str) -> list[str]:
    return [hashlib.sha1(f"{salt}{i}".encode()).hexdigest()[:8] for i in range(count)]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1_500_000_000, 0o644
    tar.addfile(info, io.BytesIO(data))


def build_dataset_archive(path: Path, clips: int, speakers: int, seed: int = 0) -> dict:
    """speech_commands_v0.02.tar.gz's layout at ``clips`` clips (the real per-word proportions)."""
    from tqdm import tqdm

    maker, rng = ClipMaker(seed), np.random.default_rng(seed + 1)
    ids = speaker_ids(speakers, "speaker")
    counts = {w: max(1, round(n * clips / V2_TOTAL)) for w, n in V2_COUNTS.items()}
    validation, testing = [], []
    tmp = path.with_suffix(".part")
    with (
        tarfile.open(tmp, "w:gz", compresslevel=1) as tar,
        tqdm(total=sum(counts.values()), desc="archive", unit="clip", mininterval=2) as bar,
    ):
        for word in sorted(counts):
            takes: dict[int, int] = {}
            for _ in range(counts[word]):
                s = int(rng.integers(speakers))
                takes[s] = takes.get(s, -1) + 1
                name = f"{word}/{ids[s]}_nohash_{takes[s]}.wav"
                _add(tar, name, encode_pcm16(maker.clip(word, s, maker.length()), RATE))
                which = which_set(name, 10, 10)
                (
                    validation if which == "validation" else testing if which == "testing" else []
                ).append(name)
                bar.update()
        for noise, seconds in NOISES.items():
            audio = np.clip(rng.normal(0, 0.1, seconds * RATE) * 32767, -32768, 32767).astype("<i2")
            _add(tar, f"{BACKGROUND_NOISE_DIR}/{noise}.wav", encode_pcm16(audio, RATE))
        _add(tar, f"{BACKGROUND_NOISE_DIR}/README.md", b"Stand-in background noise.\n")
        _add(tar, "LICENSE", b"Stand-in data for bench/scale.py.\n")
        _add(tar, "README.md", b"A stand-in for Speech Commands v0.02 (synthetic tones).\n")
        _add(tar, "validation_list.txt", "".join(f"{n}\n" for n in validation).encode())
        _add(tar, "testing_list.txt", "".join(f"{n}\n" for n in testing).encode())
    os.replace(tmp, path)
    return {"clips": sum(counts.values()), "speakers": speakers, "words": len(counts)}


def build_test_archive(path: Path, clips: int, seed: int = 1) -> dict:
    """speech_commands_test_set_v0.02.tar.gz's layout: the ten words, _unknown_, _silence_."""
    maker, rng = ClipMaker(seed), np.random.default_rng(seed + 1)
    ids = speaker_ids(max(50, clips // 12), "official")
    others = [w for w in V2_COUNTS if w not in WANTED]
    folders = WANTED + ["_unknown_", "_silence_"]
    tmp = path.with_suffix(".part")
    with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
        for i, folder in enumerate(folders):
            for k in range(clips // len(folders) + (i < clips % len(folders))):
                s = int(rng.integers(len(ids)))
                if folder == "_silence_":
                    name, audio = f"{folder}/silence_{k:04d}.wav", maker.clip("", s, RATE) // 4
                elif folder == "_unknown_":
                    word = others[int(rng.integers(len(others)))]
                    name, audio = (
                        f"{folder}/{word}_{ids[s]}_nohash_{k}.wav",
                        maker.clip(word, s, RATE),
                    )
                else:
                    name, audio = f"{folder}/{ids[s]}_nohash_{k}.wav", maker.clip(folder, s, RATE)
                _add(tar, name, encode_pcm16(audio, RATE))
    os.replace(tmp, path)
    return {"clips": clips}


# ------------------------------------------------------------------ measuring


class Sampler(threading.Thread):
    """The largest anonymous resident memory (RssAnon) of any process under ``pid``, every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_anon, self.stop = pid, 0, threading.Event()

    def run(self):
        import psutil

        while not self.stop.is_set():
            try:
                procs = [
                    psutil.Process(self.pid),
                    *psutil.Process(self.pid).children(recursive=True),
                ]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    with open(f"/proc/{proc.pid}/status", encoding="utf-8") as status:
                        for line in status:
                            if line.startswith("RssAnon:"):
                                kib = int(line.split()[1])
                                self.peak_anon = max(self.peak_anon, kib * 1024)
                except OSError:
                    pass
            self.stop.wait(0.2)


def run_measured(cmd: list[str], cwd: Path, env: dict, log) -> dict:
    """Run ``cmd``; its wall time, peak RSS and block writes (its whole process tree), anon peak."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    sampler = Sampler(proc.pid)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {log.name}")
    return {
        "seconds": seconds,
        "peak_rss": usage.ru_maxrss * 1024,
        "peak_anon": sampler.peak_anon,
        "written": usage.ru_oublock * 512,
    }


def timed(cmd: list[str], cwd: Path, env: dict, repeat: int = 3) -> float:
    """Median wall time of ``repeat`` runs (after one warm-up run)."""
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def disk_bytes(*paths: Path) -> int:
    """Bytes of disk blocks under ``paths``, each hardlinked file counted once (du)."""
    present = [str(p) for p in paths if p.exists()]
    if not present:
        return 0
    out = subprocess.run(
        ["du", "-s", "-c", "-B1", *present],
        check=True,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    return int(out.stdout.strip().splitlines()[-1].split()[0])


def file_bytes(path: Path) -> int:
    """Apparent size of a file or folder (the data itself)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def count_files(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def mmss(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.1f} s"


# ------------------------------------------------------------------ the run


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def copy_project(dest: Path) -> None:
    """The repository's tracked and unignored files, as a fresh git repository."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for stale in ("dvc.lock",):
        (dest / stale).unlink(missing_ok=True)


def git(repo: Path, env: dict, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips", type=int, default=V2_TOTAL, help="clips in the data set (v0.02: 105,829)"
    )
    parser.add_argument(
        "--speakers", type=int, default=None, help="default: 2,618 scaled to --clips"
    )
    parser.add_argument(
        "--test-clips", type=int, default=None, help="official test set (default 4,890 scaled)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/kws-scale"))
    parser.add_argument(
        "--keep", action="store_true", help="keep the project copy, remote and clone"
    )
    args = parser.parse_args(argv)
    speakers = args.speakers or max(20, round(2618 * args.clips / V2_TOTAL))
    test_clips = args.test_clips or max(120, round(OFFICIAL_TEST_CLIPS * args.clips / V2_TOTAL))

    work = args.work
    archives = work / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    for stale in ("repo", "remote", "clone"):
        shutil.rmtree(work / stale, ignore_errors=True)
    tag = f"{args.clips}-{speakers}-{test_clips}"
    dataset_tar = archives / f"speech_commands_v0.02-{tag}.tar.gz"
    test_tar = archives / f"speech_commands_test_set_v0.02-{tag}.tar.gz"
    start = time.perf_counter()
    if not dataset_tar.is_file():
        build_dataset_archive(dataset_tar, args.clips, speakers)
    if not test_tar.is_file():
        build_test_archive(test_tar, test_clips)
    print(
        f"archives: {dataset_tar.name} {gb(dataset_tar.stat().st_size)}, {test_tar.name} "
        f"{gb(test_tar.stat().st_size)} (built or reused in {mmss(time.perf_counter() - start)})"
    )

    load_before = os.getloadavg()
    server, url = serve(archives)
    repo, log_path = work / "repo", work / "dvc.log"
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        PATH=f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        NO_PROXY="127.0.0.1,localhost",
        DVC_NO_ANALYTICS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        KWS_NO_PROGRESS="1",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    try:
        repo.mkdir()
        copy_project(repo)
        params_path = repo / "params.yaml"
        params = read_yaml(params_path.read_text(encoding="utf-8"))
        params["data"].update(
            source="url",
            url=f"{url}/{dataset_tar.name}",
            test_set="official",
            test_set_source=f"{url}/{test_tar.name}",
        )
        text = params_path.read_text(encoding="utf-8")
        for key in ("source", "url", "test_set", "test_set_source"):  # keep the file's comments
            text = _set_key(text, key, params["data"][key])
        params_path.write_text(text, encoding="utf-8")
        git(repo, env, "init", "-q", "-b", "main")
        git(repo, env, "add", "-A")
        git(repo, env, "commit", "-q", "-m", "scale benchmark")

        rows, cache = [], repo / ".dvc" / "cache"
        with open(log_path, "w", encoding="utf-8") as log:
            for stage in STAGES:
                before = disk_bytes(cache)
                figures = run_measured(["dvc", "repro", "--single-item", stage], repo, env, log)
                figures["outs"] = sum(
                    file_bytes(repo / out) for out in STAGE_OUTS[stage] if (repo / out).exists()
                )
                figures["cache_growth"] = disk_bytes(cache) - before
                rows.append((stage, figures))
                print(f"  {stage}: {mmss(figures['seconds'])}", flush=True)
        total = sum(f["seconds"] for _, f in rows)

        print(
            f"\nScale benchmark: {args.clips:,} clips ({speakers:,} speakers, 35 words, "
            f"{len(NOISES)} noise recordings) + official test set of {test_clips:,}; "
            f"{os.cpu_count()} CPU cores, load average before the DAG {load_before[0]:.1f} "
            f"(1 min) / {load_before[1]:.1f} (5 min), after it {os.getloadavg()[0]:.1f} / "
            f"{os.getloadavg()[1]:.1f}\n"
        )
        print(
            "| stage | wall time | peak RSS | peak anon. memory | bytes written | outputs "
            "| DVC cache growth |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for stage, f in rows:
            print(
                f"| {stage} | {mmss(f['seconds'])} | {gb(f['peak_rss'])} | {gb(f['peak_anon'])} | "
                f"{gb(f['written'])} | {gb(f['outs'])} | {gb(f['cache_growth'])} |"
            )
        print(
            f"| **whole DAG** | **{mmss(total)}** | {gb(max(f['peak_rss'] for _, f in rows))} | "
            f"{gb(max(f['peak_anon'] for _, f in rows))} | "
            f"{gb(sum(f['written'] for _, f in rows))} | | "
            f"{gb(sum(f['cache_growth'] for _, f in rows))} |"
        )

        git(repo, env, "add", "-A")
        git(repo, env, "commit", "-q", "-m", "reproduced")
        version = timed(["dvc", "version"], repo, env)
        noop = timed(["dvc", "repro"], repo, env)
        status = timed(["dvc", "status"], repo, env)
        print(
            f"\n| command | median of 3 |\n| --- | ---: |\n| `dvc version` | {version:.2f} s |\n"
            f"| no-op `dvc repro` | {noop:.2f} s ({noop / version:.1f}x) |\n"
            f"| no-op `dvc status` | {status:.2f} s ({status / version:.1f}x) |"
        )

        features = file_bytes(repo / "data" / "features")
        archive = dataset_tar.stat().st_size + test_tar.stat().st_size
        used = disk_bytes(repo / "data", repo / "models", cache)
        downloads = disk_bytes(repo / ".cache" / "downloads")
        print(
            f"\nDisk: workspace (data/, models/) + .dvc/cache = {gb(used)}; "
            f"archives {gb(archive)} + features {gb(features)} = {gb(archive + features)}: "
            f"{used / (archive + features):.2f}x. "
            f"Workspace files: {count_files(repo / 'data') + count_files(repo / 'models')}; "
            f"the download cache .cache/downloads holds {gb(downloads)} (data.keep_download: "
            f"{params['data'].get('keep_download', True)}); keeping the archives there "
            f"(data.keep_download: true) would make it "
            f"{gb(used + archive)}: {(used + archive) / (archive + features):.2f}x."
        )

        remote = work / "remote"
        subprocess.run(
            ["dvc", "remote", "add", "--local", "-d", "bench", str(remote)],
            cwd=repo,
            env=env,
            check=True,
            capture_output=True,
        )
        with open(log_path, "a", encoding="utf-8") as log:
            push = run_measured(["dvc", "push"], repo, env, log)
        objects = count_files(remote)
        clone = work / "clone"
        git(work, env, "clone", "-q", str(repo), str(clone))
        subprocess.run(
            ["dvc", "remote", "add", "--local", "-d", "bench", str(remote)],
            cwd=clone,
            env=env,
            check=True,
            capture_output=True,
        )
        with open(log_path, "a", encoding="utf-8") as log:
            pull = run_measured(["dvc", "pull"], clone, env, log)
        pulled = count_files(clone / ".dvc" / "cache")
        clean = subprocess.run(
            ["dvc", "status"], cwd=clone, env=env, capture_output=True, text=True, encoding="utf-8"
        ).stdout
        print(
            f"\n| transfer | time | objects | size |\n| --- | ---: | ---: | ---: |\n"
            f"| `dvc push` (every output, to a local remote) | {mmss(push['seconds'])} "
            f"| {objects} | "
            f"{gb(disk_bytes(remote))} |\n"
            f"| `dvc pull` (a fresh clone) | {mmss(pull['seconds'])} | {pulled} | "
            f"{gb(disk_bytes(clone / '.dvc' / 'cache'))} |"
        )
        said = clean.strip().splitlines()[-1] if clean.strip() else "(nothing)"
        print(f"\nthe clone after the pull: `dvc status` says {said}")
        summary = {
            "clips": args.clips,
            "stages": dict(rows),
            "dag_seconds": total,
            "dvc_version_s": version,
            "noop_repro_s": noop,
            "noop_status_s": status,
            "disk_bytes": used,
            "archive_bytes": archive,
            "feature_bytes": features,
            "push": push,
            "pull": pull,
            "objects": objects,
        }
        (work / "scale.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    finally:
        server.shutdown()
        if not args.keep:
            for stale in ("repo", "remote", "clone"):
                shutil.rmtree(work / stale, ignore_errors=True)
    return 0


def _set_key(text: str, key: str, value: str) -> str:
    """Set ``data.<key>`` in params.yaml's text, leaving its comments alone."""
    lines, in_data = text.splitlines(keepends=True), False
    for i, line in enumerate(lines):
        if line.startswith("data:"):
            in_data = True
        elif in_data and line and not line[0].isspace():
            break
        elif in_data and line.startswith(f"  {key}:"):
            lines[i] = f"  {key}: {value}\n"
            return "".join(lines)
    raise SystemExit(f"params.yaml has no data.{key}")


if __name__ == "__main__":
    raise SystemExit(main())
