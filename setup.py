from glob import glob

from setuptools import find_packages, setup

package_name = "fornet_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["weights/*.pt", "data/clips/*/*.md", "data/clips/*/*.md5", "data/clips/*/bag/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools", "numpy", "opencv-python-headless", "pyyaml", "tqdm", "torch>=2.4"],
    extras_require={
        "export": ["onnx", "onnxruntime"],
        "bags": ["rosbags"],
        "test": ["pytest"],
    },
    zip_safe=False,
    maintainer="fornet_ros developers",
    maintainer_email="fornet-ros@example.org",
    description="FoR-Net semantic segmentation (Top-K focus on hard regions) for ROS 2 cameras",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "fornet = fornet_ros.cli:main",
            "segmentation_node = fornet_ros.ros.segmentation_node:main",
        ],
    },
)
