"""tools/slurm_train.sh hands srun the hosts' arguments (Slurm itself is not here: a stand-in srun records them)."""
import os
import stat
import subprocess

from toy_runs import DET_CONFIG, REPO


def test_slurm_train_launches_train_py_with_the_slurm_launcher(tmp_path):
    record = tmp_path / 'srun_args'
    srun = tmp_path / 'srun'
    srun.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {record}\n')
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f'{tmp_path}:{os.environ["PATH"]}', GPUS='16', GPUS_PER_NODE='8',
               SRUN_ARGS='--quotatype=auto', PYTHON='python3')
    subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'ssdlite', DET_CONFIG, 'work_dirs/x', '--amp'], cwd=REPO,
                   env=env, check=True)
    args = record.read_text().splitlines()
    assert args[:2] == ['-p', 'gpu']
    for expected in ('--job-name=ssdlite', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8', '--quotatype=auto'):
        assert expected in args
    python, unbuffered, script, *train_args = args[args.index('python3'):]
    assert unbuffered == '-u' and os.path.samefile(os.path.join(REPO, script), os.path.join(REPO, 'tools/train.py'))
    assert train_args == [DET_CONFIG, '--work-dir=work_dirs/x', '--launcher=slurm', '--amp']
