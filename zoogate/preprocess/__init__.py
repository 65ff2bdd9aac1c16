"""Preprocessing: the torchvision reference built from a baseline entry, deployed variants, file writers.

reference  the torchvision pipeline of a baseline entry (the truth)
variants   the named variants (reference, fast, ascend-modelzoo, vacc-vamp, vacc-vsx, timm-eval): build(variant, model),
           and the decoder each one documents
decoders   PIL and OpenCV image decoding (what a variant's pipeline is fed)
fast       bit-identical reference with PIL + numpy, parallel over files (preprocess_paths)
vdsp       vdsp_params JSON parsing; the VACC card's vdsp op (cv2) and the vamp / vsx host flows that feed it
geometry   resize and crop-offset rules (round vs truncate)
parity     distance between a variant and the reference; the fast == reference gate
expected   each variant's recorded outputs (digests) and the exact gate on them
measured   parity cases over the registry, the fixture set, the records (`python -m zoogate.preprocess.measured --write`)
planted    planted faults (settings changed, decoder swapped) for the fault matrix, self-tests and check-inputs
writers    bin / npy / npz (+ datalist) outputs
batch      a folder in, one output per image out: the engine of `zoogate preprocess`
prepared   a lab's own preprocessed files (.bin/.npy/.npz): reading them, pairing them with their images
explain    what made one prepared file: the flows' distances, an exact match or a planted fault
check_inputs  `zoogate check-inputs`: every prepared file explained, a summary per folder, the verdict
"""
