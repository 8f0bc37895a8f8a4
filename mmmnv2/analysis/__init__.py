"""Measuring the models: multiply-adds and parameters as the paper counts them, speed beside the hosts' peers, and
every deployment runtime against the machine's floor and LiteRT."""
from .benchmark import BenchmarkSettings, markdown_table, run_benchmark
from .complexity import count_macs, count_parameters, forward_macs, tta_area_factor
from .deploy_benchmark import DeploySettings, markdown_report, run_deploy_benchmark, write_reports

__all__ = ['BenchmarkSettings', 'DeploySettings', 'count_macs', 'count_parameters', 'forward_macs', 'markdown_report',
           'markdown_table', 'run_benchmark', 'run_deploy_benchmark', 'tta_area_factor', 'write_reports']
