#!/usr/bin/env bash
# The offline GPU proof, on the GPU box (no network; its python3 has torch, transformers, accelerate,
# nvidia-ml-py, pandas, pyarrow, scikit-learn): install the gathered kit (.gpu-kit/, gather.sh) without
# network, run the kit's study (study.py: random Llama-3.2-1B, fp16 and eight methods, batch 32/8/1, three
# repetitions) to its run table, then `pytest -m cuda`, and write the run table, the logs and a summary into
# one folder ($OUT). With --device cpu it is the CPU rehearsal of the same path (a tiny random Llama).
#
# usage: scripts/gpu-proof/run.sh [--device cuda|cpu] [--python PY] [--model SOURCE]
#                                 [--study-seconds N] [--tests-seconds N]
#   --study-seconds counts from run.sh's start: the study stops there (batch 32 first, then 8, then 1) and
#   the summary says what finished; a second call resumes it while the machine keeps /tmp (WORK).
#   --tests-seconds 0 skips the tests. Exit status 1 if anything did not finish.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DEVICE=cuda PYTHON=python3 MODEL="" STUDY_SECONDS="" TESTS_SECONDS=200
while [ $# -gt 0 ]; do
    case $1 in
        --device) DEVICE=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --study-seconds) STUDY_SECONDS=$2; shift 2 ;;
        --tests-seconds) TESTS_SECONDS=$2; shift 2 ;;
        *) echo "run.sh: unknown option $1 (see the usage at the top of $0)" >&2; exit 2 ;;
    esac
done
if [ "$DEVICE" = cuda ]; then
    MODEL=${MODEL:-random:llama-3.2-1b} STUDY_SECONDS=${STUDY_SECONDS:-330}
else
    MODEL=${MODEL:-random:$HERE/tiny-llama.json} STUDY_SECONDS=${STUDY_SECONDS:-900}
fi
KIT=$ROOT/.gpu-kit
WORK=${WORK:-${TMPDIR:-/tmp}/quantbench-gpu-proof-$DEVICE}
OUT=${OUT:-$ROOT/.gpu-proof/out-$DEVICE}
SITE=$WORK/site
mkdir -p "$OUT" "$WORK/study"
exec > >(tee -a "$OUT/run.log") 2>&1
START=$SECONDS
FAILED=()  # what did not finish; the exit status says whether anything did not
phase() { echo "== [$((SECONDS - START)) s] $*"; }

phase "kit: $(ls "$KIT"/wheels/*.whl 2>/dev/null | wc -l) wheels, $(du -sm "$KIT" 2>/dev/null | cut -f1) MiB; python: $PYTHON"
[ -d "$KIT/wheels" ] || { echo "run.sh: no $KIT/wheels; run scripts/gpu-proof/gather.sh first" >&2; exit 1; }
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" || exit 1
[ "$DEVICE" = cpu ] || nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv

KIT_ID=$(ls "$KIT"/wheels "$KIT"/sdists 2>/dev/null | md5sum | cut -d' ' -f1)  # a new kit is installed afresh
if [ "$(cat "$SITE/.installed" 2>/dev/null)" != "$KIT_ID" ]; then
    phase "install the kit into $SITE (no network)"
    # wheels this Python cannot take (the rehearsal's 3.11 and the box's cp312 builds) come from its base
    mapfile -t WHEELS < <("$PYTHON" - "$KIT" <<'EOF'
import sys
from pathlib import Path
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename
here = set(sys_tags())
for wheel in sorted(Path(sys.argv[1]).glob("wheels/*.whl")):
    if parse_wheel_filename(wheel.name)[3] & here:
        print(wheel)
    else:
        print(f"run.sh: not for this Python, taken from its base: {wheel.name}", file=sys.stderr)
EOF
)
    rm -rf "$SITE" && mkdir -p "$SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check --target "$SITE" \
        "${WHEELS[@]}" || exit 1
    # pypcre (GPTQModel's regex engine) has no wheel: its one C extension, against the system's libpcre2-8
    # and the pcre2.h its sdist bundles (its own build would clone PCRE2 from GitHub)
    PCRE=$WORK/pypcre && rm -rf "$PCRE" && mkdir -p "$PCRE" && tar xzf "$KIT"/sdists/pypcre-*.tar.gz -C "$PCRE" --strip-components 1
    INCLUDE=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    SUFFIX=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    gcc -shared -fPIC -O2 -std=c11 -I"$INCLUDE" -I"$PCRE/pcre_ext" "$PCRE"/pcre_ext/*.c -l:libpcre2-8.so.0 -ldl \
        -o "$SITE/pcre_ext_c$SUFFIX" && cp -r "$PCRE/pcre" "$SITE/" \
        || echo "run.sh: pypcre did not build: GPTQ and AWQ will fail (their rows and tests say so)"
    echo "$KIT_ID" > "$SITE/.installed"
fi
export PYTHONPATH=$ROOT/src:$SITE PATH=$SITE/bin:$PATH PYTHONUNBUFFERED=1
"$PYTHON" -c "import quantbench.energy, snakemake, zeus.monitor, codecarbon" \
    || { echo "run.sh: the pipeline does not import; see above" >&2; exit 1; }
for backend in bitsandbytes optimum.quanto torchao hqq gptqmodel auto_round; do  # one that fails leaves failed rows
    "$PYTHON" -c "import $backend" >/dev/null 2>&1 || { echo "run.sh: $backend does not import"; FAILED+=("import $backend"); }
done

phase "study: $MODEL on $DEVICE, until $STUDY_SECONDS s"
STUDY=$WORK/study/study.yaml
"$PYTHON" "$HERE/study.py" config --device "$DEVICE" --model "$MODEL" > "$STUDY" && cp "$STUDY" "$OUT/"
snake() {  # run the DAG up to the targets given, stopping at the study's deadline
    local left=$((START + STUDY_SECONDS - SECONDS)) what=$1
    [ "$left" -gt 10 ] || { phase "deadline reached: not started: $what"; FAILED+=("$what (deadline)"); return 1; }
    phase "snakemake: $what (${left} s left)"; shift
    timeout --signal=INT --kill-after=60 "$left" "$PYTHON" -m snakemake --snakefile "$ROOT/Snakefile" \
        --directory "$WORK/study" --configfile "$STUDY" --cores "$(nproc)" --resources gpu=1 --scheduler greedy \
        --keep-going --rerun-incomplete "$@" || { local rc=$?; echo "snakemake stopped (exit $rc)"; FAILED+=("$what"); return 1; }
}
mapfile -t TARGETS < <("$PYTHON" "$HERE/study.py" targets "$STUDY")
# --keep-incomplete: a job stopped at the deadline keeps the batch sizes it wrote (each record is written
# whole, batch 32 first); Snakemake would delete them as the outputs of an unfinished job
snake "benchmarks" --keep-incomplete "${TARGETS[@]}"
snake "the run table" results/tables/runs.csv

if [ "$TESTS_SECONDS" -gt 0 ]; then
    phase "pytest -m cuda, until $TESTS_SECONDS s"
    (cd "$ROOT" && timeout --signal=INT --kill-after=30 "$TESTS_SECONDS" "$PYTHON" -m pytest -m cuda tests/test_cuda.py \
        -p no:cacheprovider -q -rs 2>&1) > "$OUT/pytest.log"
    rc=$?
    echo "pytest exit $rc: $(tail -1 "$OUT/pytest.log")"
    [ "$rc" = 0 ] || FAILED+=("pytest -m cuda")
fi

phase "summary"
"$PYTHON" "$HERE/summarize.py" "$WORK/study" "$OUT" || FAILED+=("summary")
tar czf "$OUT/logs.tar.gz" -C "$WORK/study" results/logs .snakemake/log 2>/dev/null
phase "done: $OUT holds $(ls "$OUT" | tr '\n' ' ')"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'run.sh: did not finish: %s\n' "${FAILED[@]}"
    exit 1
fi
