"""Preprocessing: the torchvision reference built from a baseline entry, deployed variants, file writers.

reference  the torchvision pipeline of a baseline entry (the truth)
variants   the named variants (reference, fast, ascend-modelzoo, vacc-vdsp, timm-eval): build(variant, model)
fast       bit-identical reference with PIL + numpy, parallel over files (preprocess_paths)
vdsp       vdsp_params JSON parsing and the OpenCV-bilinear emulation of a VACC card's preprocessing
geometry   resize and crop-offset rules (round vs truncate)
parity     distance between a variant and the reference; the preprocessing gates
measured   parity cases over the registry, the fixture set, recorded distances of the documented variants
writers    bin / npy / npz (+ datalist) outputs
batch      a folder in, one output per image out: the engine of `zoogate preprocess`
"""
