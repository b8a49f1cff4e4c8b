using System.Net;
using System.Net.Sockets;

namespace MeshGateway.Testing;

/// <summary>Hands out loopback ports free for both TCP and UDP (Consul's DNS and Serf use both), never the same twice per run.</summary>
internal static class FreePorts
{
    private static readonly HashSet<int> s_given = [];

    public static int Next()
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            using var tcp = new TcpListener(IPAddress.Loopback, 0);
            tcp.Start();
            int port = ((IPEndPoint)tcp.LocalEndpoint).Port;
            try
            {
                using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
            }
            catch (SocketException)
            {
                continue;
            }

            lock (s_given)
            {
                if (s_given.Add(port))
                {
                    return port;
                }
            }
        }

        throw new InvalidOperationException("No free loopback port found for TCP and UDP after 200 attempts.");
    }
}
