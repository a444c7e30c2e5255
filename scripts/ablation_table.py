"""Print the ablation tables of docs/benchmarks.md from docs/bench/ablation/*.json."""
import json
import sys
from pathlib import Path

B = Path(__file__).resolve().parents[1] / "docs" / "bench" / "ablation"


def row(name, d, extra=""):
    pc = d["per_class_iou"]
    thin = " / ".join(f"{pc.get(c, float('nan')):.3f}" for c in ("pole", "traffic sign", "person", "rider"))
    hr = "-" if not d["selected_fraction"] else f"{d['hard_region_recall']:.2f} @ {d['selected_fraction']:.2f}"
    return (f"| {name} | {d['miou']:.4f} | {d['boundary_iou']:.4f} | {d['thin_miou']:.4f} | {thin} | "
            f"{d['pixel_accuracy']:.4f} | {hr} |{extra}")


print("| run | mIoU | boundary IoU | thin mIoU | pole / sign / person / rider IoU | pixel acc | hard-region recall @ area |")
print("|---|---|---|---|---|---|---|")
for name in sys.argv[1:]:
    f = B / f"eval_{name}.json"
    if f.is_file():
        print(row(name, json.loads(f.read_text())))
