import { lazy, StrictMode, Suspense } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { ApiError } from "./api";
import { Shell } from "./components/Shell";
import { Spinner } from "./components/ui";
import "./index.css";

// Every page is its own chunk: the first load carries only the shell.
const Login = lazy(() => import("./pages/Login"));
const Guilds = lazy(() => import("./pages/Guilds"));
const Overview = lazy(() => import("./pages/Overview"));
const Members = lazy(() => import("./pages/Members"));
const MemberDetail = lazy(() => import("./pages/MemberDetail"));
const Analytics = lazy(() => import("./pages/Analytics"));
const Plugins = lazy(() => import("./pages/Plugins"));
const ApiKeys = lazy(() => import("./pages/ApiKeys"));
const Sessions = lazy(() => import("./pages/Sessions"));
const Audit = lazy(() => import("./pages/Audit"));
const Settings = lazy(() => import("./pages/Settings"));

const s = (el: JSX.Element) => <Suspense fallback={<Spinner />}>{el}</Suspense>;

const router = createBrowserRouter([
  { path: "/login", element: s(<Login />) },
  {
    element: <Shell />,
    children: [
      { path: "/", element: <Navigate to="/guilds" replace /> },
      { path: "/guilds", element: s(<Guilds />) },
      { path: "/guilds/:guild", element: s(<Overview />) },
      { path: "/guilds/:guild/members", element: s(<Members />) },
      { path: "/guilds/:guild/members/:user", element: s(<MemberDetail />) },
      { path: "/guilds/:guild/analytics", element: s(<Analytics />) },
      { path: "/guilds/:guild/plugins", element: s(<Plugins />) },
      { path: "/guilds/:guild/audit", element: s(<Audit />) },
      { path: "/guilds/:guild/settings", element: s(<Settings />) },
      { path: "/account/api-keys", element: s(<ApiKeys />) },
      { path: "/account/sessions", element: s(<Sessions />) },
      { path: "*", element: <Navigate to="/guilds" replace /> },
    ],
  },
]);

const qc = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      retry: (n, e) => !(e instanceof ApiError && e.status >= 400 && e.status < 500) && n < 2,
      refetchOnWindowFocus: false,
    },
  },
});

if (localStorage.getItem("theme") === "dark" || (!localStorage.getItem("theme") && window.matchMedia?.("(prefers-color-scheme: dark)").matches)) {
  document.documentElement.classList.add("dark");
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={qc}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
