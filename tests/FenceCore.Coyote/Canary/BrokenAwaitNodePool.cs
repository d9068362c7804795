namespace FenceCore.Coyote.Canary;

/// <summary>
/// A model of the await node's pool (<c>Fence.AwaitContinuation</c>: <c>Rent</c>, <c>Run</c>, <c>Release</c>):
/// each thread's pool holds one spare node, and a node goes back to the pool of the thread that allocated
/// it, from whatever thread runs its continuation, while that thread may be renting for its next await.
/// The seeded bug sends the node home before reading its continuation: the awaiting thread can rent it
/// again and write its next continuation first, so the runner runs that one and the first is lost.
/// Coyote must find that interleaving. The pool is an explicit object here (the library keeps it in a
/// thread-local field), so that two tasks can stand for the awaiting thread and the running one.
/// </summary>
internal static class BrokenAwaitNodePool
{
    public sealed class Pool
    {
        public Node? Spare;
    }

    public sealed class Node(Pool home)
    {
        public Pool Home { get; } = home;

        public Action? Continuation;
    }

    /// <summary>As the library's <c>Rent</c>: the spare if there is one, else a new node of this pool.</summary>
    public static Node Rent(Pool pool, Action continuation)
    {
        Node? node = Volatile.Read(ref pool.Spare);
        if (node is null)
        {
            node = new Node(pool);
        }
        else
        {
            Volatile.Write(ref pool.Spare, null);
        }

        Volatile.Write(ref node.Continuation, continuation);
        return node;
    }

    /// <summary>Runs the node's continuation, sending the node home.</summary>
    public static void Run(Node node)
    {
        // SEEDED BUG: the library copies the continuation before Release sends the node home; this model
        // sends it home first and reads the continuation after.
        Release(node);
        Action continuation = Volatile.Read(ref node.Continuation)!;
        continuation();
    }

    private static void Release(Node node)
    {
        if (Volatile.Read(ref node.Home.Spare) is null)
        {
            Volatile.Write(ref node.Home.Spare, node);
        }
    }
}
