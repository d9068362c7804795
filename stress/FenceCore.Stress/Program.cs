using FenceCore.Stress;

// fencecore-stress: the README's main command. Exit 0 when every invariant held (and every output was
// written), 1 when one broke and only then, 2 for bad usage or an output that could not be written, 3 for
// an internal error (StressCommand).
return StressCommand.Invoke(args, StressRun.Execute);
