Deno.serve(() => new Response(JSON.stringify({ synced: true })));
