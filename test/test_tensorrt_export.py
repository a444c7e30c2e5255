"""`fornet export --tensorrt`: the TensorRT engine built ahead into the cache the runner reads. The
provider is absent here: the error path runs for real, the build with a stand-in onnxruntime
session that records what it was given."""

import pytest


def test_export_tensorrt_fails_in_one_line_without_the_provider(tmp_path, checkpoint_path, capsys):
    import onnxruntime as ort

    from fornet_ros.cli import main as cli
    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has TensorRT")  # the build test below covers the rest
    assert cli(["export", "--checkpoint", str(checkpoint_path), "--onnx", str(tmp_path / "m.onnx"), "--tensorrt"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--tensorrt needs onnxruntime-gpu" in err and "CPUExecutionProvider" in err
    assert not (tmp_path / "m.onnx").exists()  # checked before exporting
    assert cli(["export", "--checkpoint", str(checkpoint_path), "--onnx", str(tmp_path / "m.onnx"), "--tensorrt",
                "--max-batch", "0"]) == 2
    assert "--max-batch must be >= 1" in capsys.readouterr().err


def test_tensorrt_engine_is_built_with_the_runners_options(tmp_path, checkpoint_path, monkeypatch):
    import onnxruntime as ort

    from fornet_ros.inference import export
    from fornet_ros.inference.runtime import OrtRunner, tensorrt_options
    info = export.export_onnx(checkpoint_path, tmp_path / "m.onnx", check=False, trt_max_batch=3)
    assert export.read_onnx_metadata(tmp_path / "m.onnx")[1]["trt_max_batch"] == 3
    assert OrtRunner(tmp_path / "m.onnx", "cpu").default_topk == info["topk_ratio"]  # the CPU still runs it
    seen = []

    class FakeSession:  # what onnxruntime-gpu does with an engine cache: writes the engine there
        def __init__(self, path, providers):
            seen.append(providers)
            (tmp_path / "TensorrtExecutionProvider_TRTKernel_graph_0.engine").write_bytes(b"engine")

        def get_providers(self):
            return ["TensorrtExecutionProvider", "CPUExecutionProvider"]

        def run(self, names, feed):
            seen.append(feed["image"].shape)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    built = export.build_tensorrt_engine(tmp_path / "m.onnx", 3)
    want = tensorrt_options(tmp_path / "m.onnx", 0, True, (128, 256), 3)  # what OrtRunner passes
    assert seen[0] == [("TensorrtExecutionProvider", want)] and seen[1:] == [(1, 3, 128, 256), (3, 3, 128, 256)]
    assert want["trt_engine_cache_enable"] and want["trt_engine_cache_path"] == str(tmp_path.resolve())
    assert want["trt_profile_max_shapes"] == "image:3x3x128x256" and want["trt_profile_min_shapes"] == "image:1x3x128x256"
    assert built["engine_files"] == ["TensorrtExecutionProvider_TRTKernel_graph_0.engine"] and built["fp16"]
    assert "trt_profile_min_shapes" not in tensorrt_options(tmp_path / "m.onnx", 0, False, (128, 256))
