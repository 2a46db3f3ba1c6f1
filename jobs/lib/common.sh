# Shared by the job scripts in jobs/: find the repository and Python, size the
# run, pick the MPI launcher. Sourced, not run. Works under Slurm, PBS and
# plain bash (scheduler directives are comments then).
#
# Environment the scripts honour (all optional):
#   SQD_PYTHON    Python with sqd-suite installed (default: $VIRTUAL_ENV/bin/python,
#                 then <repo>/.venv/bin/python, then python3 on PATH)
#   SQD_RANKS     MPI ranks (default: the allocation's tasks; outside a scheduler
#                 the recommendation of `python -m sqd_suite.hpc resources`, at most nproc)
#   SQD_LAUNCHER  launcher prefix, e.g. "srun --mpi=pmi2" or "mpiexec" (default: probed)
#   SQD_THREADS   threads per rank for numba/BLAS (default: cpus per task, else 1)

set -euo pipefail

sqd_die() { echo "sqd job: error: $*" >&2; exit 2; }

# Jobs start in the submission folder under Slurm; PBS starts them in $HOME.
if [[ -n "${PBS_O_WORKDIR:-}" ]]; then cd "$PBS_O_WORKDIR"; fi

sqd_find_python() {
    local cand
    for cand in "${SQD_PYTHON:-}" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" "$SQD_HOME/.venv/bin/python" "$(command -v python3 || true)"; do
        if [[ -n "$cand" && -x "$cand" ]] && "$cand" -c 'import sqd_suite' 2>/dev/null; then
            SQD_PYTHON=$cand
            return 0
        fi
    done
    sqd_die "no Python with sqd_suite found; set SQD_PYTHON=/path/to/venv/bin/python"
}

sqd_threads() {
    local n=${SQD_THREADS:-${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}}
    # One rank per core by default: MPI ranks, not threads, carry the sigma work.
    export OMP_NUM_THREADS=$n OPENBLAS_NUM_THREADS=$n MKL_NUM_THREADS=$n NUMBA_NUM_THREADS=$n
}

# Ranks granted by the scheduler, or recommended for the config when run by hand.
sqd_ranks() {
    local config=$1
    if [[ -n "${SQD_RANKS:-}" ]]; then echo "$SQD_RANKS"; return; fi
    if [[ -n "${SLURM_NTASKS:-}" ]]; then echo "$SLURM_NTASKS"; return; fi
    if [[ -n "${PBS_NODEFILE:-}" && -r "${PBS_NODEFILE:-}" ]]; then wc -l <"$PBS_NODEFILE"; return; fi
    local rec
    rec=$(sqd_resource "$config" ranks)
    local cores
    cores=$(nproc)
    echo $(( rec < cores ? rec : cores ))
}

# One field of `python -m sqd_suite.hpc resources --format shell`.
sqd_resource() {
    local config=$1 field=${2^^}
    "$SQD_PYTHON" -m sqd_suite.hpc resources "$config" --format shell | sed -n "s/^SQD_${field}=//p"
}

# Print what the run needs next to what the job got (the job log documents its sizing).
sqd_report_resources() {
    local config=$1 ranks=$2
    local where="no scheduler"
    if [[ -n "${SLURM_JOB_ID:-}" ]]; then where="Slurm job $SLURM_JOB_ID${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}"; fi
    if [[ -n "${PBS_JOBID:-}" ]]; then where="PBS job $PBS_JOBID"; fi
    echo "== sqd job: $(date -u +%FT%TZ) on $(hostname -s), $where"
    "$SQD_PYTHON" -m sqd_suite.hpc resources "$config" || true
    local want mem
    want=$(sqd_resource "$config" ranks || true)
    mem=$(sqd_resource "$config" mem_per_rank_mb || true)
    if [[ -n "$want" && "$ranks" -lt "$want" ]]; then
        echo "== note: the estimate asks for $want ranks; with $ranks each holds more of the vectors"
    fi
    # Slurm exports the per-rank memory it granted; say so when it is below the estimate.
    if [[ -n "$mem" && -n "${SLURM_MEM_PER_CPU:-}" && "${SLURM_MEM_PER_CPU}" -lt "$mem" ]]; then
        echo "== note: ${SLURM_MEM_PER_CPU} MB per rank granted, the estimate is $mem MB (an upper bound)"
    fi
    echo "== running with $ranks MPI rank(s), $OMP_NUM_THREADS thread(s) each"
}

# sqd_launch N CMD...: run CMD on N MPI ranks with the launcher for this place.
sqd_launch() {
    local n=$1; shift
    local prefix
    prefix=$("$SQD_PYTHON" -m sqd_suite.hpc launcher --ranks "$n") || sqd_die "no MPI launcher"
    local -a launcher
    read -r -a launcher <<<"$prefix"
    echo "== ${launcher[*]} $*"
    "${launcher[@]}" "$@"
}

sqd_find_python
sqd_threads

# The run file a config writes (output.path, else runs/<name>.h5).
sqd_output_path() {
    "$SQD_PYTHON" -c 'import sys; from sqd_suite.config import load_config; print(load_config(sys.argv[1]).output_path)' "$1"
}

# sqd_run_or_resume N CONFIG OUTPUT [sqd run options]: a requeued or resubmitted
# job continues an unfinished run file instead of refusing it.
sqd_run_or_resume() {
    local n=$1 config=$2 output=$3; shift 3
    local status
    status=$("$SQD_PYTHON" -c 'import sys; from sqd_suite.store import run_file_status as s; print(s(sys.argv[1]) if __import__("os").path.exists(sys.argv[1]) else "absent")' "$output")
    case "$status" in
        complete) echo "== $output is complete; nothing to do (pass --force to rerun)"
                  [[ " $* " == *" --force "* ]] || return 0
                  sqd_launch "$n" "$SQD_PYTHON" -m sqd_suite.cli run "$config" --output "$output" "$@" ;;
        absent)   sqd_launch "$n" "$SQD_PYTHON" -m sqd_suite.cli run "$config" --output "$output" "$@" ;;
        *)        echo "== $output is unfinished ($status): resuming"
                  sqd_launch "$n" "$SQD_PYTHON" -m sqd_suite.cli resume "$output" ;;
    esac
}
