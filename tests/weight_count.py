"""An independent count of the bytes of weights a decode step reads: the loaded variant's tensors in memory,
not its files. Tied tables are one tensor in memory (counted once); a library's quantized tensors are found
where it keeps them (tensor subclasses' inner tensors, bitsandbytes' scales and QuantState, hqq's meta)."""

import itertools

import torch


def in_memory_weight_bytes(runtime) -> int:
    if hasattr(runtime, "llm"):  # llama.cpp: what it reports of the tensors it loaded (a tied model's)
        import llama_cpp

        return int(llama_cpp.llama_model_size(runtime.llm.model))
    model, seen, total = runtime.model, set(), 0
    tensors = [t for _, t in model.named_parameters()]
    for module in model.modules():
        if "Rotary" not in type(module).__name__:  # its tables are computed from positions, not weights
            tensors += [b for _, b in module.named_buffers(recurse=False)]  # kernels' repacked weights included
        tensors += [v for k, v in vars(module).items() if isinstance(v, dict) and not k.startswith("_")]  # hqq's meta
    for leaf in itertools.chain.from_iterable(_leaves(t, set()) for t in tensors):
        key = (leaf.untyped_storage().data_ptr(), leaf.storage_offset(), leaf.nbytes)
        if leaf.numel() and key not in seen:
            seen.add(key)
            total += leaf.nbytes
    embedding, output = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    if embedding.untyped_storage().data_ptr() != output.untyped_storage().data_ptr():
        total -= embedding.nbytes  # a step reads only its batch's rows of an untied embedding
    return total


def _leaves(value, visited: set):
    """The plain tensors in `value`: a tensor subclass's inner tensors (torchao, quanto), the tensors a tensor
    or a bitsandbytes object carries as attributes (Int8Params.SCB, Params4bit.quant_state), dict values."""
    if isinstance(value, torch.Tensor):
        if hasattr(value, "__tensor_flatten__") and type(value) not in (torch.Tensor, torch.nn.Parameter):
            names, _ = value.__tensor_flatten__()
            for name in names:
                yield from _leaves(getattr(value, name), visited)
            return
        yield value
        yield from _leaves(getattr(value, "__dict__", {}), visited)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item, visited)
    elif type(value).__module__.startswith("bitsandbytes") and id(value) not in visited:
        visited.add(id(value))
        yield from _leaves(vars(value), visited)
