"""``fornet bench-node --soak``: a very short soak of two tiny cameras over real DDS (the 5-minute
figures are in docs/bench/soak_5min.json; docs/reliability.md)."""

import json
import os
import subprocess
import sys

from ros_harness import ROOT


def test_short_soak_reports_rss_latency_and_exact_accounting(tmp_path):
    import torch
    from conftest import spread_selector
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "m.pt", spread_selector(create_model("fornet_s", topk_ratio=0.25)),
                           ModelMeta.default(19, (64, 128)))
    p = subprocess.run([sys.executable, "-m", "fornet_ros.cli", "bench-node", "--checkpoint", str(ckpt),
                        "--size", "48", "64", "--rate", "5", "--soak", "0.2", "--cameras", "2", "--sample-s", "2",
                        "--threads", "1", "--domain", str(225 + os.getpid() % 5)],
                       capture_output=True, text=True, timeout=90, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert r["cameras"] == 2 and r["node_alive_at_end"] and r["node_exit_code"] == 0
    assert len(r["rss_mb"]) >= 6 and all(v > 50 for _, v in r["rss_mb"])  # every 2 s for 12 s, a torch process
    assert r["rss_slope_mb_per_min_after_warmup"] is not None and r["rss_samples_after_warmup"] >= 4
    assert set(r["frames"]) == {"cam0", "cam1"}
    for f in r["frames"].values():
        assert f["sent"] >= 55 and f["processed"] > 0
        assert f["received"] == f["processed"] + f["dropped"]
        assert f["sent"] == f["received"] + f["lost_in_transport"]
    assert r["accounting_exact"]
    assert r["latency_per_minute"][0]["frames"] > 0 and r["latency_per_minute"][0]["latency_ms_p95"] > 0
    assert "soak" in p.stderr and "node RSS" in p.stderr  # progress every sample


def test_frame_accounting_and_latency_per_minute():
    from fornet_ros.ros.soak import frame_accounting, latency_per_minute
    base = {"cam0": {"received": "5", "processed": "5"}, "cam1": {"received": "5", "processed": "4",
                                                                  "dropped_overwritten": "1"}}
    final = {"cam0": {"received": "105", "processed": "95", "dropped_overwritten": "10"},
             "cam1": {"received": "103", "processed": "90", "dropped_overwritten": "11", "lost_in_transport": "2"}}
    frames, exact = frame_accounting({"cam0": 100, "cam1": 100}, base, final)
    assert frames["cam0"]["dropped"] == 10 and frames["cam0"]["sent_eq_received_plus_lost"]
    assert frames["cam1"] == {**frames["cam1"], "received": 98, "processed": 86, "dropped": 10, "lost_in_transport": 2}
    assert not frames["cam1"]["received_eq_processed_plus_dropped"] and not exact  # 98 != 86 + 10
    lat = [(10.0, 100.0), (50.0, 110.0), (70.0, 120.0), (130.0, 140.0), (150.0, 150.0)]
    per_minute, slope = latency_per_minute(lat, 180.0, 60.0)
    assert [r["frames"] for r in per_minute] == [2, 1, 2]
    assert per_minute[0]["latency_ms_p50"] == 105.0 and per_minute[2]["latency_ms_p95"] == 150.0
    assert abs(slope - 25.0) < 1e-9  # minutes 1 and 2 (after the warm-up): p50 120 -> 145
