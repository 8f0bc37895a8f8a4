"""mmmnv2: MobileNetV2, SSDLite and Mobile DeepLabv3 for MMDetection 3.x and MMSegmentation 1.x."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'", (HERE / 'mmmnv2' / 'version.py').read_text()).group(1)

setup(
    name='mmmnv2',
    version=VERSION,
    description='The MobileNetV2 paper (backbone, SSDLite, Mobile DeepLabv3) as an OpenMMLab plugin',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['mmmnv2', 'mmmnv2.*']),
    include_package_data=True,
    # mim reads the model zoo, configs and tools from <package>/.mim/ (symlinks into the checkout, copied into wheels)
    package_data={'mmmnv2': ['.mim/model-index.yml', '.mim/configs/**/*', '.mim/tools/**/*']},
    install_requires=[
        # The ranges the hosts themselves accept: mmdet 3.x and mmseg 1.x assert mmcv < 2.2.0 at import.
        'torch>=1.8',
        'mmengine>=0.10.0,<1.0.0',
        'mmcv>=2.0.0rc4,<2.2.0',
        'mmdet>=3.0.0,<3.4.0',
        'mmsegmentation>=1.0.0,<1.3.0',
        # mmseg 1.2.x imports these at start-up without declaring them.
        'ftfy',
        'regex',
        'pycocotools',
        'matplotlib',
        'numpy',
    ],
    extras_require={
        # ai-edge-litert: the reference runtime for Google's TFLite models; keras 3 (on its torch backend, no
        # TensorFlow): an independent TF-padding MobileNetV2 the converted TF-slim weights are checked against.
        # openmim: `mim search mmmnv2` / `mim train mmmnv2 CONFIG` read model-index.yml. 0.3.7: later versions pull
        # openxlab, which pins old setuptools, requests and rich and would downgrade them.
        # tensorboard: the GraphDef / TensorProto protos that read TF frozen graphs (.pb) without TensorFlow.
        'tests': ['pytest>=7', 'ruff>=0.4', 'tflite>=2.10', 'ai-edge-litert>=1.0', 'keras>=3.0', 'openmim==0.3.7',
                  'tensorboard>=2.16'],
        'benchmark': ['ai-edge-litert>=1.0', 'tflite>=2.10'],  # `benchmark.py --suite deploy`: LiteRT, Google's file
        'tflite': ['tflite>=2.10'],  # reading .tflite files in tools/model_converters/tf_to_openmmlab.py
        'tf-graph': ['tensorboard>=2.16'],  # reading frozen graphs (.pb); TF checkpoints are read without extras
        # TensorFlow: not needed to convert; the slow tests of test_tf_checkpoints.py write checkpoints with it
        'tf': ['tensorflow>=2.10'],
        'deploy': ['onnx>=1.15', 'onnxruntime>=1.17', 'onnxscript>=0.3', 'openvino>=2024.0', 'nncf>=2.10'],
        # onnxscript: torch's ONNX exporter; openvino: the second runtime; nncf: its int8 quantization
        # tools/deployment/export_mobile.py and the .tflite / .pte runners: litert-torch converts to LiteRT and
        # ai-edge-litert runs it; executorch exports to (torch.export -> XNNPACK) and runs .pte programs.
        'mobile': ['litert-torch>=0.10', 'ai-edge-litert>=1.0', 'executorch>=1.0'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
