#!/usr/bin/env bash
# slurm_sweep.sh - run an ablasim sweep across the nodes of a Slurm cluster (example; adapt the
# #SBATCH lines to your site). Submit with:  sbatch scripts/slurm_sweep.sh configs/sweep_example.yaml
#
# Layout: one MPI rank per point-in-flight, OpenMP threads inside each rank. A point is one
# simulation; its threads share the grid, so give each rank the cores of one socket or a few
# (the explicit solver is memory-bandwidth bound: past ~8 threads per rank more ranks pay
# better than more threads). Rank 0 also runs points and alone writes OUTPUT_DIR (journal,
# results.csv, results.h5), so OUTPUT_DIR only has to be on a file system rank 0 sees; the sweep
# file, the base scenario and the tissue table must be readable by every rank.
#
# Resuming: if the job hits its time limit (or a node dies), submit the same script again: the
# journal keeps every finished point and only the rest run. Nothing to clean up in between. At
# the time limit Slurm sends SIGTERM: the sweep abandons the points in flight, releases its lock
# and exits 75 (docs/SWEEPS.md "Journal and resume").
#
#SBATCH --job-name=ablasim-sweep
#SBATCH --nodes=4                 # nodes
#SBATCH --ntasks-per-node=4       # MPI ranks per node (points running at once per node)
#SBATCH --cpus-per-task=8         # cores per rank = OpenMP threads per point
#SBATCH --time=04:00:00
#SBATCH --output=ablasim-sweep-%j.log
set -euo pipefail

SWEEP=${1:?usage: sbatch scripts/slurm_sweep.sh SWEEP.yaml}
ABLASIM=${ABLASIM:-build/mpi/bin/ablasim}    # built with: make MPI=1

# module load openmpi hdf5 ...                # site-specific, if the libraries are modules

# One OpenMP thread per core the rank owns, kept on those cores (fields are first-touched by
# the threads that use them: no migration, no remote memory).
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
export OMP_PLACES=cores
export OMP_PROC_BIND=close

# srun starts the ranks with the cores Slurm allocated (Open MPI built with PMIx support):
srun --cpu-bind=cores "$ABLASIM" sweep "$SWEEP" --threads "$OMP_NUM_THREADS"

# Without srun/PMIx, use mpirun; bind each rank to its block of cores:
# mpirun -np "$SLURM_NTASKS" --map-by "ppr:${SLURM_NTASKS_PER_NODE}:node:PE=${OMP_NUM_THREADS}" \
#        --bind-to core "$ABLASIM" sweep "$SWEEP" --threads "$OMP_NUM_THREADS"
