"""rbft_core.data.prefetch: a run's videos decoded into the frame cache on a background thread."""

from __future__ import annotations

import numpy as np

from rbft_core.data import video as V
from rbft_core.data.frame_cache import FrameCache
from rbft_core.data.frames import SampleSpec
from rbft_core.data.prefetch import FramePrefetcher
from tests.helpers import make_video, make_zero_byte


def _clips(tmp_path, n):
    paths = [make_video(tmp_path / f"c{i}.mp4", num_frames=12, color_seed=i) for i in range(n)]
    return [(str(p), V.file_sha256(p)) for p in paths]


def test_prefetched_frames_are_the_frames_the_collator_would_decode(tmp_path):
    videos, spec = _clips(tmp_path, 3), SampleSpec(num_frames=4)
    cache = FrameCache(tmp_path / "cache", max_items_in_memory=0)
    with FramePrefetcher(videos + videos[:1], spec, cache) as prefetch:  # a duplicate is decoded once
        prefetch._thread.join(60)
    assert prefetch.decoded == 3 and prefetch.failed == 0
    for path, sha in videos:
        assert cache.contains(sha, spec)
        assert np.array_equal(cache.get(sha, spec).frames, V.sample_frames(path, spec).frames)


def test_cached_videos_are_skipped_and_an_unreadable_one_is_left_to_the_collator(tmp_path, monkeypatch):
    videos, spec = _clips(tmp_path, 2), SampleSpec(num_frames=4)
    cache = FrameCache(tmp_path / "cache")
    V.sample_frames(videos[0][0], spec, sha256=videos[0][1], cache=cache)
    broken = make_zero_byte(tmp_path / "broken.mp4")
    decoded = []
    real = V._decode_samples
    monkeypatch.setattr(V, "_decode_samples", lambda path, s: decoded.append(str(path)) or real(path, s))
    prefetch = FramePrefetcher([videos[0], (str(broken), "ab" * 32), videos[1]], spec, cache).start()
    prefetch._thread.join(60)
    assert decoded == [str(broken), videos[1][0]]  # the cached clip was not decoded again
    assert prefetch.decoded == 1 and prefetch.failed == 1 and not cache.contains("ab" * 32, spec)


def test_stop_ends_the_thread_before_the_next_video(tmp_path):
    videos, spec = _clips(tmp_path, 3), SampleSpec(num_frames=4)
    cache = FrameCache(tmp_path / "cache")
    prefetch = FramePrefetcher(videos, spec, cache)
    prefetch._stop.set()  # stopped before it starts: it must decode nothing
    prefetch.start()
    prefetch.stop()
    assert not prefetch._thread.is_alive() and prefetch.decoded == 0
    assert not any(cache.contains(sha, spec) for _, sha in videos)
