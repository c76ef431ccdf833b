#!/usr/bin/env bash
#  launcher_templates.sh BUILD_DIR
#
#  Issue 13: the job scripts the batch launchers generate (lp-launch-slurm,
#  lp-launch-pbs, lp-launch-sge `script`, which prints what `start` would
#  submit), for given options: the directive lines (#SBATCH, #PBS, #$),
#  the array (--array 0-N-1, -J/-t 0-N-1, -t 1-N), the options' lines
#  and the engine line. Then each script is run as its batch system would
#  run it, for one array task (the task variable set: SLURM_ARRAY_TASK_ID,
#  PBS_ARRAY_INDEX / PBS_ARRAYID, SGE_TASK_ID), with a probe in place of
#  lpengine that writes down its arguments and LP_WALLTIME_END: the id
#  asked for, the connection file (a path with a space), the log and the
#  walltime must be right. A profile's own template wins over the default;
#  bad options and a missing qsub fail with a message that says so.
#
#  No PBS server exists in Debian: this is the content check the issue
#  allows for it. Slurm and Grid Engine are also run for real
#  (launcher_slurm, launcher_sge).
#  Starts no process but the scripts themselves (label unit).
set -u
BUILD=${1:?usage: launcher_templates.sh BUILD_DIR}
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
lp_test launcher_templates
L=$LP_TEST_ROOT/src/launchers
for k in slurm pbs sge; do
    [ -x "$L/lp-launch-$k" ] || { fail "$L/lp-launch-$k missing or not executable"; finish; }
done
lp_tmpdir T tmpl

#  the controller's environment for a launcher (the launcher contract)
mkdir -p "$T/profile_demo" "$T/conn dir"
PROBE=$T/probe
cat > "$PROBE" <<'EOF'
#!/bin/bash
#  stands in for lpengine: its arguments, one a line, and the walltime
printf '%s\n' "$@" > "$PROBE_OUT"
echo "LP_WALLTIME_END=${LP_WALLTIME_END:-}" >> "$PROBE_OUT"
EOF
chmod +x "$PROBE"
export LP_N=4 LP_FIRST_ID=10 LP_ENGINE=$PROBE LP_ENGINE_FILE="$T/conn dir/lp-engine.json"
export LP_ENGINE_ARGS="--lost-exit 60000 --memory-limit 512"
export LP_PROFILE_DIR=$T/profile_demo LP_STATE_DIR=$T/profile_demo/launcher LP_LOG_DIR=$T/profile_demo/log
export PROBE_OUT=$T/probe.out

#  gen KIND [KEY=VALUE...]: the script of KIND with options LP_OPT_KEY
gen() {
    local kind=$1 kv key
    shift
    local -a opts=()
    for kv in "$@"; do
        key=${kv%%=*}
        opts+=("LP_OPT_${key^^}=${kv#*=}")
    done
    env "${opts[@]}" "$L/lp-launch-$kind" script
}

#  has TEXT LINE: TEXT has the line LINE exactly
has() { grep -qxF -- "$2" <<< "$1"; }
check_lines() {     # NAME TEXT LINES...
    local name=$1 text=$2 line missing=""
    shift 2
    for line in "$@"; do
        has "$text" "$line" || missing="$missing '$line'"
    done
    [ -z "$missing" ] || fail "$name: no line$missing in the script:
$text"
}
lacks() {           # NAME TEXT PATTERN
    grep -qE -- "$3" <<< "$2" && fail "$1: a line matches '$3'"
}

#  run_task NAME SCRIPT VAR=VALUE...: runs SCRIPT (bash, without the batch
#  system) with the task variables; then the probe's record is in PROBE_OUT
run_task() {
    local name=$1 script=$2
    shift 2
    rm -f "$PROBE_OUT"
    printf '%s\n' "$script" > "$T/job.sh"
    if ! env "$@" bash "$T/job.sh" > "$T/job.log" 2>&1; then
        fail "$name: the script failed: $(cat "$T/job.log")"; return
    fi
    [ -f "$PROBE_OUT" ] || fail "$name: the script did not start the engine"
}
#  the probe's argument after FLAG
arg_of() { grep -A1 -xF -- "$1" "$PROBE_OUT" 2>/dev/null | sed -n 2p; }
walltime() { sed -n 's/^LP_WALLTIME_END=//p' "$PROBE_OUT" 2>/dev/null; }

check_engine() {    # NAME ID: the probe got the engine line of id ID
    local name=$1 id=$2
    [ "$(arg_of --file)" = "$LP_ENGINE_FILE" ] || fail "$name: --file '$(arg_of --file)', not '$LP_ENGINE_FILE'"
    [ "$(arg_of --id)" = "$id" ] || fail "$name: --id '$(arg_of --id)', not $id"
    [ "$(arg_of --log)" = "$LP_LOG_DIR/engine-$id.log" ] || fail "$name: --log '$(arg_of --log)'"
    [ "$(arg_of --lost-exit)" = 60000 ] && [ "$(arg_of --memory-limit)" = 512 ] \
        || fail "$name: LP_ENGINE_ARGS not passed: $(tr '\n' ' ' < "$PROBE_OUT")"
}

check_walltime() {  # NAME SECONDS: LP_WALLTIME_END is now + SECONDS (5 s slack)
    local w now
    w=$(walltime); now=$(date +%s)
    if [ -z "$w" ] || [ "$w" -lt $((now + $2 - 5)) ] || [ "$w" -gt $((now + $2 + 1)) ]; then
        fail "$1: LP_WALLTIME_END '$w', expected about $((now + $2))"
    fi
}

#  ---- Slurm ---------------------------------------------------------------
s=$(gen slurm partition=debug time=1-02:03:04 account=proj7 "sbatch_extra=--mem=2G; #SBATCH --qos=low") \
    || fail "slurm: script failed"
check_lines slurm "$s" "#!/bin/bash" "#SBATCH --job-name=lp-demo" "#SBATCH --array=0-3" \
    "#SBATCH --output=$LP_LOG_DIR/slurm-%A_%a.out" "#SBATCH --partition=debug" \
    "#SBATCH --time=1-02:03:04" "#SBATCH --account=proj7" "#SBATCH --mem=2G" "#SBATCH --qos=low"
lacks slurm "$s" '@[A-Z_]+@'
#  task 2 of the array; the job's end comes from the environment (Slurm
#  23.02 gives SLURM_JOB_END_TIME; 22.05's squeue is asked otherwise)
END=$(( $(date +%s) + 3600 ))
run_task "slurm array" "$s" SLURM_ARRAY_TASK_ID=2 LP_WALLTIME_END=$END
check_engine "slurm array" 12
[ "$(walltime)" = "$END" ] || fail "slurm: LP_WALLTIME_END '$(walltime)' not passed on as $END"

s=$(gen slurm slurm_mode=srun) || fail "slurm srun: script failed"
check_lines "slurm srun" "$s" "#SBATCH --ntasks=4" "#SBATCH --output=$LP_LOG_DIR/slurm-%j.out"
lacks "slurm srun" "$s" '^#SBATCH --(array|partition|time|account)'
grep -q '^ *exec srun ' <<< "$s" || fail "slurm srun: no srun line"
out=$(gen slurm slurm_mode=bogus 2>&1) && fail "slurm_mode=bogus accepted"
grep -q "slurm_mode must be array or srun" <<< "$out" || fail "slurm_mode=bogus: '$out'"
say "slurm: array and srun scripts, options, engine line of task 2 (id 12)"

#  ---- PBS -----------------------------------------------------------------
s=$(gen pbs queue=workq time=01:30:00 account=proj7 "pbs_extra=-l select=1:ncpus=1;-m n") \
    || fail "pbs: script failed"
check_lines pbs "$s" "#PBS -N lp-demo" "#PBS -J 0-3" "#PBS -q workq" "#PBS -l walltime=01:30:00" \
    "#PBS -A proj7" "#PBS -l select=1:ncpus=1" "#PBS -m n" "#PBS -o $LP_LOG_DIR"
lacks pbs "$s" '@[A-Z_]+@'
run_task "pbs" "$s" PBS_ARRAY_INDEX=3
check_engine pbs 13
check_walltime pbs 5400
s=$(gen pbs pbs_array_flag=t partition=batch) || fail "pbs torque: script failed"
check_lines "pbs torque" "$s" "#PBS -t 0-3" "#PBS -q batch"
lacks "pbs torque" "$s" '^#PBS -(J|l walltime)'
run_task "pbs torque" "$s" PBS_ARRAYID=0
check_engine "pbs torque" 10
[ -z "$(walltime)" ] || fail "pbs without time: LP_WALLTIME_END '$(walltime)'"
say "pbs: -J and -t arrays, options, engine lines of tasks 3 and 0, walltime 5400 s"

#  ---- SGE -----------------------------------------------------------------
s=$(gen sge queue=all.q time=90 "sge_extra=-pe smp 1") || fail "sge: script failed"
check_lines sge "$s" '#$ -N lp-demo' '#$ -t 1-4' '#$ -q all.q' '#$ -l h_rt=90' '#$ -pe smp 1' \
    '#$ -S /bin/bash' "#\$ -o $LP_LOG_DIR/"
lacks sge "$s" '@[A-Z_]+@'
run_task "sge" "$s" SGE_TASK_ID=1
check_engine sge 10
check_walltime sge 90        # h_rt=90: seconds (Slurm would read minutes)
say "sge: -t 1-4, options, engine line of task 1 (id 10)"

#  ---- a profile's own template wins --------------------------------------
printf '#!/bin/bash\n#PBS -N mine-@N@\n@DIRECTIVES@\necho custom @ENGINE_FILE_Q@\n' \
    > "$LP_PROFILE_DIR/pbs.template"
s=$(gen pbs) || fail "pbs with the profile's template: script failed"
check_lines "profile template" "$s" "#PBS -N mine-4" "#PBS -J 0-3" "echo custom $(printf '%q' "$LP_ENGINE_FILE")"
rm -f "$LP_PROFILE_DIR/pbs.template"
say "a profile's pbs.template replaces the default"

#  ---- errors a user would meet -----------------------------------------------
out=$(gen pbs pbs_array_flag=x 2>&1) && fail "pbs_array_flag=x accepted"
grep -q "pbs_array_flag must be J or t" <<< "$out" || fail "pbs_array_flag=x: '$out'"
out=$(LP_N=0 "$L/lp-launch-sge" script 2>&1) && fail "LP_N=0 accepted"
grep -q "LP_N must be a positive engine count" <<< "$out" || fail "LP_N=0: '$out'"
if ! command -v qsub >/dev/null 2>&1; then
    out=$("$L/lp-launch-pbs" start 2>&1) && fail "pbs start without qsub succeeded"
    grep -q "'qsub' not found in PATH" <<< "$out" || fail "pbs start without qsub: '$out'"
fi
#  stop with nothing submitted: nothing to do, success
"$L/lp-launch-sge" stop >/dev/null 2>&1 || fail "sge stop with no job recorded failed"
finish
