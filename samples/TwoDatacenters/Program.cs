using TwoDatacenters;

return await TwoDatacentersDemo.RunAsync(Console.Out);
