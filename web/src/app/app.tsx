import { QueryClientProvider } from "@tanstack/react-query";
import { useEffect } from "react";
import { RouterProvider } from "react-router";
import { restoreSession } from "@/lib/auth-session";
import { queryClient } from "@/lib/query-client";
import { router } from "./router";

export function App() {
  useEffect(() => {
    // After a reload the access token is gone; the refresh cookie brings the session back.
    void restoreSession();
  }, []);
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
