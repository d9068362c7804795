using FenceCore.Stress;

// fencecore-stress: the README's main command. Exit 0 when every invariant held (and every output was
// written), 1 when the run failed (an invariant broke, or the run stopped on an exception), 2 for bad usage
// or an output that could not be written (StressCommand).
return StressCommand.Invoke(args, StressRun.Execute);
